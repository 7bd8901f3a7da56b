// Work queue throughput, Go peer: P producer goroutines send N items in
// total into a buffered channel of func() (capacity C) drained by W worker
// goroutines; each item adds 1 to a counter. Timed from just before the
// producers start until the last item ran. Same protocol as
// bench/jobs/hk_jobs.c. argv: PRODUCERS WORKERS ITEMS CAPACITY.
// Prints one JSON line.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func arg(i int, def int) int {
	if len(os.Args) > i {
		if v, err := strconv.Atoi(os.Args[i]); err == nil {
			return v
		}
	}
	return def
}

func main() {
	producers, workers, total, capacity := arg(1, 1), arg(2, 2), arg(3, 1000000), arg(4, 1024)
	per := total / producers
	total = per * producers
	queue := make(chan func(), capacity)
	var done int64
	allDone := make(chan struct{})
	item := func() {
		if atomic.AddInt64(&done, 1) == int64(total) {
			close(allDone)
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range queue {
				f()
			}
		}()
	}
	t0 := time.Now()
	for p := 0; p < producers; p++ {
		go func() {
			for i := 0; i < per; i++ {
				queue <- item
			}
		}()
	}
	<-allDone
	ns := time.Since(t0).Nanoseconds()
	close(queue)
	wg.Wait()
	fmt.Printf("{\"items\": %d, \"ns\": %d, \"items_s\": %.0f}\n", total, ns, float64(total)/(float64(ns)/1e9))
}
