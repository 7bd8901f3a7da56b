module hostkit.bench/cancel

go 1.19
