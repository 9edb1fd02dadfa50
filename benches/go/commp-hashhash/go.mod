module github.com/fil-market-rs/benches/commp-hashhash

go 1.24

require github.com/filecoin-project/go-fil-commp-hashhash v0.2.0

require (
	github.com/klauspost/cpuid/v2 v2.2.4 // indirect
	github.com/minio/sha256-simd v1.0.1-0.20230130105256-d9c3aea9e949 // indirect
	golang.org/x/sys v0.6.0 // indirect
	golang.org/x/xerrors v0.0.0-20220907171357-04be3eba64a2 // indirect
)
