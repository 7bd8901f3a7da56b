// Logging benchmark, Go zap peer (bench/README.md, scenario 3).
//
// go.uber.org/zap 1.23 from Debian's golang-go.uber-zap-dev, built in GOPATH
// mode (GO111MODULE=off, GOPATH=/usr/share/gocode), nothing downloaded. The
// idiomatic fast set-up: zap.NewProductionEncoderConfig (ISO 8601 time
// here, as the other implementations), a JSON or console encoder, and a
// zapcore.BufferedWriteSyncer of 256 KiB on the file (it locks around
// writes, so goroutines can share it), stopped (flushed) at the end inside
// the timed region. Strongly typed fields (zap.Int64, zap.Float64,
// zap.String), not the sugared logger.
//
// Usage: zap filtered N
//        zap file console|json GOROUTINES N PATH
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

var users = [4]string{"alice", "bob", "carol", "dave"}

func die(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "zap peer: "+f+"\n", a...)
	os.Exit(1)
}

func encoder(format string) zapcore.Encoder {
	cfg := zap.NewProductionEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	if format == "json" {
		return zapcore.NewJSONEncoder(cfg)
	}
	return zapcore.NewConsoleEncoder(cfg)
}

func filtered(n int) {
	lg := zap.New(zapcore.NewCore(encoder("json"), zapcore.AddSync(os.Stderr), zapcore.InfoLevel))
	var ts []float64
	for k := 0; k < 5; k++ {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			lg.Debug("Processed items", zap.Int64("Count", int64(i)),
				zap.Float64("ElapsedMs", float64(i)*0.5), zap.String("User", users[i&3]))
		}
		ts = append(ts, float64(time.Since(t0).Nanoseconds())/float64(n))
	}
	sort.Float64s(ts)
	fmt.Printf("{\"impl\":\"zap\",\"mode\":\"filtered\",\"n\":%d,\"tmpl_ns\":%.3f}\n", n, ts[2])
}

func file(format string, threads, n int, path string) {
	f, err := os.Create(path)
	if err != nil {
		die("%v", err)
	}
	ws := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(f), Size: 256 << 10, FlushInterval: time.Hour}
	lg := zap.New(zapcore.NewCore(encoder(format), ws, zapcore.InfoLevel))
	var wg, ready sync.WaitGroup
	start := make(chan struct{})
	per := make([]float64, threads)
	ends := make([]time.Time, threads)
	for g := 0; g < threads; g++ {
		cnt := n / threads
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
				lg.Info("Processed items", zap.Int64("Count", int64(i)),
					zap.Float64("ElapsedMs", float64(i&1023)*0.25), zap.String("User", users[i&3]))
			}
			ends[g] = time.Now()
			per[g] = float64(ends[g].Sub(t0).Nanoseconds()) / float64(cnt)
		}(g, cnt)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	wg.Wait()
	if err := ws.Stop(); err != nil {
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
	fmt.Printf("{\"impl\":\"zap\",\"mode\":\"file\",\"format\":\"%s\",\"threads\":%d,\"n\":%d,"+
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
		die("usage: zap filtered [N] | zap file console|json GOROUTINES N PATH")
	}
}
