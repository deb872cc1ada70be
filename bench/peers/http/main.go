// Command http is the Go peer of apps/hello: the same three endpoints served
// by net/http the way a Go programmer would write them, so that
// bench/http_bench.py can put Spindle's costs next to the library it imitates.
//
//	http --port N
//
//	GET  /plaintext  200 text/plain        Hello, World!
//	GET  /json       200 application/json  {"message":"Hello, World!"}, marshalled per request
//	POST /echo       200 with the request body
//
// GOMAXPROCS is left to the environment (the driver sets it to 1). It listens
// on 127.0.0.1 only: it is a benchmark peer, not a service. Go 1.19's ServeMux
// has no method patterns, so each handler checks its method itself and
// answers 405 with Allow, as apps/hello does.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
)

var hello = []byte("Hello, World!")

type message struct {
	Message string `json:"message"`
}

// only wraps a handler so that any other method gets 405 with Allow.
func only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}

func plaintext(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Write(hello)
}

func jsonHandler(w http.ResponseWriter, _ *http.Request) {
	body, err := json.Marshal(message{Message: "Hello, World!"})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(body)
}

func main() {
	port := flag.Int("port", 8080, "TCP port to listen on")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/plaintext", only(http.MethodGet, plaintext))
	mux.HandleFunc("/json", only(http.MethodGet, jsonHandler))
	mux.HandleFunc("/echo", only(http.MethodPost, echo))
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
