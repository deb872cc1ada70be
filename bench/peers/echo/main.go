// Command echo is the Go peer of apps/tcp-echo: a TCP echo server written the
// way a Go programmer would, so that bench/echo_bench.py can put Spindle's
// costs next to the runtime it imitates. One goroutine per connection, each
// with a 16 KiB buffer, reading what arrives and writing it straight back.
//
//	echo -port N
//
// GOMAXPROCS is left to the environment (the driver sets it to 1). It listens
// on 127.0.0.1 only: it is a benchmark peer, not a service. Go sets
// TCP_NODELAY on every connection by default, as the other servers do.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"time"
)

const bufSize = 16 << 10

func main() {
	port := flag.Int("port", 7000, "TCP port to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors and the like: back off instead of spinning.
			log.Print(err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serve(c)
	}
}

// serve is io.Copy(c, c) spelled out, so that the buffer size is ours to set
// (io.Copy would use 32 KiB) and is the same as echo-limit's.
func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, bufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
