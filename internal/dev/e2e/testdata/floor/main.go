// Command floor is the benchmarks' floor: a bare net/http server that reads the body (at most 1 MiB) and
// answers 202, what any Go webhook pays for HTTP alone. It runs as a process of its own, as the handler
// does, so that both are measured the same way (/proc/<pid>/stat); it prints its address and serves until
// killed.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20))
		w.WriteHeader(http.StatusAccepted)
	}))
}
