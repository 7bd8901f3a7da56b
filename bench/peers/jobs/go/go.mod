module hostkit.bench/jobs

go 1.19
