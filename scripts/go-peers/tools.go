//go:build tools

// The Go peers the tests run against, pinned in go.mod and built by scripts/go-peers/install:
// a local IPNI indexer (storetheindex) and a retrieval client (lassie). go-libipni is pinned
// to v0.7.8 because the proxy no longer serves v0.7.7, which storetheindex v0.12.1 asks for.
package peers

import (
	_ "github.com/filecoin-project/lassie/cmd/lassie"
	_ "github.com/ipni/storetheindex"
)
