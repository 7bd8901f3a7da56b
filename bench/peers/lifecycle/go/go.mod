module hostkit.bench/lifecycle

go 1.19
