// Command sched is the Go peer of bench/scheduler_bench.cpp: the same four
// scheduler micro-benchmarks, written the way a Go programmer would, so that
// bench/run.py can put Spindle's numbers next to the runtime it imitates.
//
//	sched spawn [N]   ns to spawn and finish an empty goroutine
//	sched yield [N]   ns per runtime.Gosched() between two goroutines
//	sched rss [N]     resident bytes per parked goroutine
//	sched cpu [N]     speedup of N ~1 ms tasks on GOMAXPROCS threads
//
// Arguments and output as in package benchmain; GOMAXPROCS comes from the
// environment.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"spindle.bench/peers/internal/benchmain"
)

var benches = []benchmain.Bench{
	{Name: "spawn", Run: benchSpawn, DefaultN: 1_000_000},
	{Name: "yield", Run: benchYield, DefaultN: 2_000_000},
	{Name: "rss", Run: benchRSS, DefaultN: 1_000_000},
	{Name: "cpu", Run: benchCPU, DefaultN: 1000},
}

func main() { benchmain.Main("sched", benches) }

// benchSpawn times the whole life of N empty goroutines: spawn, run, exit.
// The WaitGroup is sized up front so the loop measures only the spawns.
func benchSpawn(n int) (float64, string) {
	var wg sync.WaitGroup
	wg.Add(n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return benchmain.NsPer(time.Since(start), n), "ns/fiber"
}

// benchYield has two goroutines hand the single P back and forth, so every
// Gosched is a real switch to the other one (meant for GOMAXPROCS=1).
func benchYield(n int) (float64, string) {
	per := max(n/2, 1)
	var wg sync.WaitGroup
	wg.Add(2)
	start := time.Now()
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < per; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return benchmain.NsPer(time.Since(start), 2*per), "ns/switch"
}

// benchRSS keeps N goroutines alive at once, each blocked on a channel
// receive, and charges the growth of the resident set to them.
func benchRSS(n int) (float64, string) {
	before := vmRSS()
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-release
		}()
	}
	started.Wait()
	after := vmRSS()
	close(release)
	fmt.Fprintf(os.Stderr, "rss: before %d kB, after %d kB\n", before/1024, after/1024)
	return float64(after-before) / float64(n), "bytes/fiber"
}

// benchCPU runs the same N tasks serially in one goroutine, then as N
// goroutines spawned from one goroutine, and reports serial/parallel time.
func benchCPU(n int) (float64, string) {
	blocks := calibrate()

	start := time.Now()
	for i := 0; i < n; i++ {
		atomic.AddUint64(&sink, spin(blocks, uint64(i)))
	}
	serial := time.Since(start)

	var wg sync.WaitGroup
	wg.Add(n)
	start = time.Now()
	for i := 0; i < n; i++ {
		go func(seed uint64) {
			atomic.AddUint64(&sink, spin(blocks, seed))
			wg.Done()
		}(uint64(i))
	}
	wg.Wait()
	parallel := time.Since(start)

	fmt.Fprintf(os.Stderr, "cpu: %d blocks/task, serial %v, parallel %v\n", blocks, serial, parallel)
	return serial.Seconds() / parallel.Seconds(), "x"
}

// sink receives every spin result so the compiler cannot drop the loops.
var sink uint64

// spin is the CPU task: blocks*64 rounds of xorshift64, a serial dependency
// chain with no closed form, so its cost is the same wherever it runs. It is
// kept in 64-round blocks to match the C++ task, which calls
// spindle::preempt_point() once per block (Go preempts asynchronously).
func spin(blocks int, seed uint64) uint64 {
	x := seed | 1
	for b := 0; b < blocks; b++ {
		for i := 0; i < 64; i++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
	}
	return x
}

// calibrate returns how many blocks of spin take about 1 ms on one core:
// it doubles the work until a run lasts 20 ms (long enough for the clock),
// then keeps the fastest of three runs to discount interruptions.
func calibrate() int {
	blocks := 256
	for timeSpin(blocks) < 20*time.Millisecond {
		blocks *= 2
	}
	best := timeSpin(blocks)
	for i := 0; i < 2; i++ {
		if d := timeSpin(blocks); d < best {
			best = d
		}
	}
	return max(int(float64(blocks)*float64(time.Millisecond)/float64(best)), 1)
}

func timeSpin(blocks int) time.Duration {
	start := time.Now()
	atomic.AddUint64(&sink, spin(blocks, uint64(blocks)))
	return time.Since(start)
}

// vmRSS returns the process's resident set size in bytes.
func vmRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest := strings.TrimPrefix(s.Text(), "VmRSS:"); rest != s.Text() {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				panic(err)
			}
			return kb * 1024
		}
	}
	panic("no VmRSS in /proc/self/status")
}

func max(a, b int) int {
	if a > b {
		return a
	}
	return b
}
