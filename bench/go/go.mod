module tunnelrpc.bench/gorpc

go 1.19
