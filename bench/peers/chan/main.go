// Command chan is the Go peer of bench/channel_bench.cpp: the same channel
// micro-benchmarks, written the way a Go programmer would.
//
//	chan pingpong1 [N]  ns per round trip over two unbuffered channels (run with GOMAXPROCS=1)
//	chan pingpong2 [N]  the same (run with GOMAXPROCS=2)
//	chan buffered [N]   ns per item, one producer and one consumer, capacity 1024
//	                    (run with GOMAXPROCS=2)
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
	"time"
)

type bench struct {
	run      func(n int) (float64, string)
	defaultN int
}

var benches = map[string]bench{
	"pingpong1": {benchPingPong, 1_000_000},
	"pingpong2": {benchPingPong, 1_000_000},
	"buffered":  {benchBuffered, 10_000_000},
}

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
	fmt.Fprintf(os.Stderr, "chan %s: N=%d GOMAXPROCS=%d\n", name, n, runtime.GOMAXPROCS(0))
	value, unit := b.run(n)
	fmt.Printf("RESULT %s %.2f %s\n", name, value, unit)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: chan {pingpong1|pingpong2|buffered} [N]")
	os.Exit(2)
}

// benchPingPong is a request/response pair: this goroutine sends on ping and
// waits on pong; an echo goroutine does the reverse.
func benchPingPong(n int) (float64, string) {
	ping, pong := make(chan int), make(chan int)
	echoDone := make(chan struct{})
	go func() {
		for v := range ping {
			pong <- v
		}
		close(echoDone)
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		if <-pong != i {
			panic("pingpong: wrong value")
		}
	}
	elapsed := time.Since(start)
	close(ping)
	<-echoDone
	return nsPer(elapsed, n), "ns/roundtrip"
}

// benchBuffered has one producer goroutine and one consumer (this one), a
// 1024-slot buffer between.
func benchBuffered(n int) (float64, string) {
	ch := make(chan int, 1024)
	start := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			ch <- i
		}
		close(ch)
	}()
	sum := 0
	for v := range ch {
		sum += v
	}
	elapsed := time.Since(start)
	if sum != n*(n-1)/2 {
		panic("buffered: wrong sum")
	}
	return nsPer(elapsed, n), "ns/item"
}

func nsPer(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / float64(n) }
