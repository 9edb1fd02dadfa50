// Command lotus-car prints, for files from the xorshift32 generator of
// piecestore/tests/unixfs.rs, the root CID and the CAR bytes that `lotus client import`
// followed by Lotus's online-deal CAR generation produce, using the same libraries Lotus
// does: go-unixfs's balanced layout (boxo) with blake2b-256, raw leaves, 1 MiB chunks,
// 1024 links and go-cidutil's 126-byte inline builder, then go-car's SelectiveCar over an
// explore-all selector. It is run by hand to refresh lotus_cars.json; CI reads the JSON.
//
//	go run . > ../data/lotus_cars.json
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/ipfs/boxo/blockservice"
	blockstore "github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	offline "github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	ihelper "github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-cidutil"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	car "github.com/ipld/go-car"
	selectorparse "github.com/ipld/go-ipld-prime/traversal/selector/parse"
	mh "github.com/multiformats/go-multihash"
)

// xorshift32 as in piecestore/tests/unixfs.rs `pattern`.
func pattern(n int) []byte {
	out := make([]byte, n)
	s := uint32(0x12345678)
	for i := range out {
		s ^= s << 13
		s ^= s >> 17
		s ^= s << 5
		out[i] = byte(s)
	}
	return out
}

type vector struct {
	Size      int    `json:"size"`
	Root      string `json:"root"`
	CarLen    int    `json:"car_len"`
	CarSha256 string `json:"car_sha256"`
	// The CAR's first bytes in hex, enough to check the header and first section by eye.
	CarHead string `json:"car_head"`
}

func main() {
	ctx := context.Background()
	var out []vector
	for _, size := range []int{0, 1, 126, 127, 1 << 20, (1 << 20) + 1, (1 << 20) + 126, (2 << 20), (3 << 20) + 5} {
		bs := blockstore.NewIdStore(blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore())))
		dag := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
		prefix, err := merkledag.PrefixForCidVersion(1)
		if err != nil {
			panic(err)
		}
		prefix.MhType = mh.BLAKE2B_MIN + 31
		params := ihelper.DagBuilderParams{
			Maxlinks:   1024,
			RawLeaves:  true,
			CidBuilder: cidutil.InlineBuilder{Builder: prefix, Limit: 126},
			Dagserv:    dag,
		}
		db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(pattern(size)), 1<<20))
		if err != nil {
			panic(err)
		}
		nd, err := balanced.Layout(db)
		if err != nil {
			panic(err)
		}
		root := nd.Cid()
		sc := car.NewSelectiveCar(ctx, bs, []car.Dag{{Root: root, Selector: selectorparse.CommonSelector_ExploreAllRecursively}}, car.TraverseLinksOnlyOnce())
		var buf bytes.Buffer
		if err := sc.Write(&buf); err != nil {
			panic(fmt.Sprintf("%d bytes: %v", size, err))
		}
		sum := sha256.Sum256(buf.Bytes())
		head := buf.Bytes()
		if len(head) > 200 {
			head = head[:200]
		}
		out = append(out, vector{size, root.String(), buf.Len(), hex.EncodeToString(sum[:]), hex.EncodeToString(head)})
		_ = cid.Undef
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
