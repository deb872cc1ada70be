// Command chan is the Go peer of bench/channel_bench.cpp: the same channel
// micro-benchmarks, written the way a Go programmer would.
//
//	chan pingpong1 [N]  ns per round trip over two unbuffered channels (run with GOMAXPROCS=1)
//	chan pingpong2 [N]  the same (run with GOMAXPROCS=2)
//	chan buffered [N]   ns per item, one producer and one consumer, capacity 1024
//	                    (run with GOMAXPROCS=2)
//
// Arguments and output as in package benchmain; GOMAXPROCS comes from the
// environment.
package main

import (
	"time"

	"spindle.bench/peers/internal/benchmain"
)

var benches = []benchmain.Bench{
	{Name: "pingpong1", Run: benchPingPong, DefaultN: 1_000_000},
	{Name: "pingpong2", Run: benchPingPong, DefaultN: 1_000_000},
	{Name: "buffered", Run: benchBuffered, DefaultN: 10_000_000},
}

func main() { benchmain.Main("chan", benches) }

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
	return benchmain.NsPer(elapsed, n), "ns/roundtrip"
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
	return benchmain.NsPer(elapsed, n), "ns/item"
}
