// Logging benchmark, Go slog peer (bench/README.md, scenario 3).
//
// Go 1.19 (Debian bookworm's golang-go) has no log/slog; this is its
// precursor golang.org/x/exp/slog from Debian's golang-golang-x-exp-dev,
// built in GOPATH mode (GO111MODULE=off, GOPATH=/usr/share/gocode), nothing
// downloaded. slog writes synchronously from the calling goroutine (the
// handler locks a mutex around each write), so to be fair to it the handler
// writes into a bufio.Writer of 256 KiB on the file, flushed once at the end
// (the flush is inside the timed region).
//
// Usage: slog filtered N
//        slog file text|json GOROUTINES N PATH
// Prints one JSON line like bench/logging/hk_logging.c.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/exp/slog"
)

var users = [4]string{"alice", "bob", "carol", "dave"}

func die(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "slog peer: "+f+"\n", a...)
	os.Exit(1)
}

func filtered(n int) {
	lg := slog.New(slog.HandlerOptions{Level: slog.InfoLevel}.NewJSONHandler(os.Stderr))
	var ts []float64
	for k := 0; k < 5; k++ {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			lg.LogAttrs(slog.DebugLevel, "Processed items", slog.Int64("Count", int64(i)),
				slog.Float64("ElapsedMs", float64(i)*0.5), slog.String("User", users[i&3]))
		}
		ts = append(ts, float64(time.Since(t0).Nanoseconds())/float64(n))
	}
	sort.Float64s(ts)
	fmt.Printf("{\"impl\":\"slog\",\"mode\":\"filtered\",\"n\":%d,\"tmpl_ns\":%.3f}\n", n, ts[2])
}

func file(format string, threads, n int, path string) {
	f, err := os.Create(path)
	if err != nil {
		die("%v", err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	opts := slog.HandlerOptions{Level: slog.InfoLevel}
	var h slog.Handler
	if format == "json" {
		h = opts.NewJSONHandler(bw)
	} else {
		h = opts.NewTextHandler(bw)
	}
	lg := slog.New(h)
	var wg, ready sync.WaitGroup
	start := make(chan struct{})
	per := make([]float64, threads)
	ends := make([]time.Time, threads)
	for g := 0; g < threads; g++ {
		cnt := n/threads
		if g < n%threads {
			cnt++
		}
		wg.Add(1)
		ready.Add(1)
		go func(g, cnt int) {
			defer wg.Done()
			ready.Done()
			<-start
			t0 := time.Now()
			for i := 0; i < cnt; i++ {
				lg.LogAttrs(slog.InfoLevel, "Processed items", slog.Int64("Count", int64(i)),
					slog.Float64("ElapsedMs", float64(i&1023)*0.25), slog.String("User", users[i&3]))
			}
			ends[g] = time.Now()
			per[g] = float64(ends[g].Sub(t0).Nanoseconds()) / float64(cnt)
		}(g, cnt)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	wg.Wait()
	if err := bw.Flush(); err != nil {
		die("%v", err)
	}
	total := time.Since(t0)
	last := ends[0]
	caller := 0.0
	for g := range per {
		caller += per[g] / float64(threads)
		if ends[g].After(last) {
			last = ends[g]
		}
	}
	f.Close()
	fmt.Printf("{\"impl\":\"slog\",\"mode\":\"file\",\"format\":\"%s\",\"threads\":%d,\"n\":%d,"+
		"\"caller_ns\":%.1f,\"calls_s\":%.6f,\"total_s\":%.6f,\"dropped\":0}\n",
		format, threads, n, caller, last.Sub(t0).Seconds(), total.Seconds())
}

func main() {
	a := os.Args
	if len(a) >= 2 && a[1] == "filtered" {
		n := 100000000
		if len(a) > 2 {
			n, _ = strconv.Atoi(a[2])
		}
		filtered(n)
	} else if len(a) >= 6 && a[1] == "file" {
		th, _ := strconv.Atoi(a[3])
		n, _ := strconv.Atoi(a[4])
		file(a[2], th, n, a[5])
	} else {
		die("usage: slog filtered [N] | slog file text|json GOROUTINES N PATH")
	}
}
