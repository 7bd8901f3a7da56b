// Cancellation benchmark, Go peer: how long a goroutine blocked on
// <-ctx.Done() takes to run once another goroutine calls cancel().
//
// For each of N fresh contexts (context.WithCancel, not timed): main hands the
// context to the waiter goroutine, waits until the waiter announced that it
// is about to block, sleeps 50 us in nanosleep(2) (so the waiter is parked),
// records t0 and calls cancel(); the waiter records t1 as soon as
// <-ctx.Done() returns.
// The first warmup cancels are not counted. Same protocol as
// bench/cancel/hk_cancel.c.
//
// After cancel(), main blocks on a channel until the waiter reports back,
// as hk_cancel's main thread blocks on a semaphore. Go's scheduler puts the
// readied waiter in main's own run queue (runnext), so when main blocks the
// waiter usually runs on main's thread: a goroutine switch, no thread
// wake-up. That is how Go behaves, so it is what is measured.
// argv[1]: N (default 10000). Prints one JSON line like hk_cancel.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

const warmup = 200

var settleTs = syscall.NsecToTimespec(int64(50 * time.Microsecond))

func main() {
	n := 10000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v < 1 {
			fmt.Fprintln(os.Stderr, "usage: cancel [N]")
			os.Exit(1)
		}
		n = v
	}
	total := warmup + n
	base := time.Now()
	t0 := make([]time.Duration, total)
	t1 := make([]time.Duration, total)

	handoff := make(chan context.Context)
	result := make(chan struct{})
	var ready atomic.Int64

	go func() {
		for i := 0; i < total; i++ {
			ctx := <-handoff
			ready.Store(int64(i + 1))
			<-ctx.Done()
			t1[i] = time.Since(base)
			result <- struct{}{}
		}
	}()

	for i := 0; i < total; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		handoff <- ctx
		for ready.Load() != int64(i+1) {
			runtime.Gosched()
		}
		// Settle with the same nanosleep(2) call as hk_cancel: time.Sleep
		// below a millisecond rounds up to about 1 ms on this Go version
		// (timers ride on epoll_wait's millisecond timeout).
		_ = syscall.Nanosleep(&settleTs, nil)
		t0[i] = time.Since(base)
		cancel()
		<-result
	}

	lat := make([]int64, n)
	for i := 0; i < n; i++ {
		lat[i] = int64(t1[warmup+i] - t0[warmup+i])
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	p99 := int(float64(n) * 0.99)
	if p99 >= n {
		p99 = n - 1
	}
	fmt.Printf("{\"impl\":\"go\",\"mode\":\"ctx.Done\",\"n\":%d,\"p50_ns\":%d,\"p99_ns\":%d,\"max_ns\":%d}\n",
		n, lat[n/2], lat[p99], lat[n-1])
}
