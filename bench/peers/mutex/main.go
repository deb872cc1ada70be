// Command mutex is the Go peer of bench/mutex_bench.cpp: the same sync.Mutex
// micro-benchmarks, written the way a Go programmer would, so that Spindle's
// numbers can be put next to the runtime it imitates.
//
//	mutex uncontended [N]   ns per Lock/Unlock pair, one goroutine (GOMAXPROCS=1)
//	mutex contended [N]     ns per Lock when 1,000 goroutines each do N
//	                        Lock/increment/Unlock on one mutex (GOMAXPROCS=2)
//
// Arguments and output as in package benchmain; GOMAXPROCS comes from the
// environment.
package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"spindle.bench/peers/internal/benchmain"
)

var benches = []benchmain.Bench{
	{Name: "uncontended", Run: benchUncontended, DefaultN: 20_000_000},
	{Name: "contended", Run: benchContended, DefaultN: 1000},
}

const contenders = 1000

func main() { benchmain.Main("mutex", benches) }

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
	return benchmain.NsPer(elapsed, n), "ns/op"
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
	return benchmain.NsPer(elapsed, contenders*n), "ns/op"
}
