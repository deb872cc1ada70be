// Command mutex is the Go peer of bench/mutex_bench.cpp: the same sync.Mutex
// micro-benchmarks, written the way a Go programmer would, so that Spindle's
// numbers can be put next to the runtime it imitates.
//
//	mutex uncontended [N]   ns per Lock/Unlock pair, one goroutine (GOMAXPROCS=1)
//	mutex contended [N]     ns per Lock when 1,000 goroutines each do N
//	                        Lock/increment/Unlock on one mutex (GOMAXPROCS=2)
//
// Each prints exactly one line "RESULT <name> <value> <unit>" on stdout;
// details go to stderr. GOMAXPROCS is left to the environment (the runner
// sets it per benchmark) so the program measures what it is given.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

type bench struct {
	run      func(n int) (float64, string)
	defaultN int
}

var benches = map[string]bench{
	"uncontended": {benchUncontended, 20_000_000},
	"contended":   {benchContended, 1000},
}

const contenders = 1000

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		usage()
	}
	name := os.Args[1]
	b, ok := benches[name]
	if !ok {
		usage()
	}
	n := b.defaultN
	if len(os.Args) == 3 {
		var err error
		if n, err = strconv.Atoi(os.Args[2]); err != nil || n < 1 {
			usage()
		}
	}
	fmt.Fprintf(os.Stderr, "mutex %s: N=%d GOMAXPROCS=%d\n", name, n, runtime.GOMAXPROCS(0))
	value, unit := b.run(n)
	fmt.Printf("RESULT %s %.2f %s\n", name, value, unit)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mutex {uncontended|contended} [N]")
	os.Exit(2)
}

// benchUncontended times the fast path alone: one CAS to lock, one atomic
// add to unlock.
func benchUncontended(n int) (float64, string) {
	var mu sync.Mutex
	counter := 0
	start := time.Now()
	for i := 0; i < n; i++ {
		mu.Lock()
		counter++
		mu.Unlock()
	}
	elapsed := time.Since(start)
	if counter != n {
		panic("lost increments")
	}
	return nsPer(elapsed, n), "ns/op"
}

// benchContended has every goroutine want the same lock for a tiny critical
// section, so most acquisitions contend: spinning, parking, wake-ups,
// starvation mode.
func benchContended(n int) (float64, string) {
	var mu sync.Mutex
	counter := 0
	var wg sync.WaitGroup
	wg.Add(contenders)
	start := time.Now()
	for g := 0; g < contenders; g++ {
		go func() {
			for i := 0; i < n; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(os.Stderr, "contended: %d locks\n", contenders*n)
	if counter != contenders*n {
		panic("lost increments")
	}
	return nsPer(elapsed, contenders*n), "ns/op"
}

func nsPer(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / float64(n) }
