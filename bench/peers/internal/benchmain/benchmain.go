// Package benchmain is the skeleton every Go peer shares with its Spindle
// counterpart (bench/common/bench_main.hpp): pick a benchmark by name, take
// an optional N, run it, and print exactly one line
// "RESULT <name> <value> <unit>" on stdout (details go to stderr);
// bench/run.py reads that line. GOMAXPROCS is left to the environment (the
// runner sets it per benchmark) so a program measures what it is given.
package benchmain

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Bench is one benchmark: Run(n) returns its value and unit.
type Bench struct {
	Name     string
	Run      func(n int) (float64, string)
	DefaultN int
}

// Main is the whole of a peer's main(): program names it in messages.
func Main(program string, benches []Bench) {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		usage(program, benches)
	}
	name := os.Args[1]
	var b *Bench
	for i := range benches {
		if benches[i].Name == name {
			b = &benches[i]
		}
	}
	if b == nil {
		usage(program, benches)
	}
	n := b.DefaultN
	if len(os.Args) == 3 {
		var err error
		if n, err = strconv.Atoi(os.Args[2]); err != nil || n < 1 {
			usage(program, benches)
		}
	}
	fmt.Fprintf(os.Stderr, "%s %s: N=%d GOMAXPROCS=%d\n", program, name, n, runtime.GOMAXPROCS(0))
	value, unit := b.Run(n)
	fmt.Printf("RESULT %s %.2f %s\n", name, value, unit)
}

func usage(program string, benches []Bench) {
	names := make([]string, len(benches))
	for i, b := range benches {
		names[i] = b.Name
	}
	fmt.Fprintf(os.Stderr, "usage: %s {%s} [N]\n", program, strings.Join(names, "|"))
	os.Exit(2)
}

// NsPer is d in nanoseconds per one of n operations.
func NsPer(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / float64(n) }
