// Lifecycle benchmark, Go peer: 10 background services (goroutines), each
// looping on its cancellation token (a context) with a 1 s interval; SIGTERM
// or SIGINT cancels the context (signal.NotifyContext), the services return,
// main waits for them and exits 0. Prints the same lifetime lines as hostkit,
// on stderr. Built by bench/run with a plain `go build` (optimised, the
// default). Standard library only.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

const (
	services = 10
	interval = time.Second
)

func service(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// one unit of (no) work per interval
			t.Reset(interval)
		}
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	defer stop()

	var wg sync.WaitGroup
	for i := 0; i < services; i++ {
		wg.Add(1)
		go service(ctx, &wg)
	}
	wd, _ := os.Getwd()
	fmt.Fprintf(os.Stderr, "info: lifetime[0] Application started. Press Ctrl+C to shut down.\n"+
		"info: lifetime[0] Hosting environment: Production\n"+
		"info: lifetime[0] Content root path: %s\n", wd)

	<-ctx.Done()
	fmt.Fprintf(os.Stderr, "info: lifetime[0] Application is shutting down...\n")
	wg.Wait()
}
