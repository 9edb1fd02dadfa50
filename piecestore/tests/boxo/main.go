// Prints UnixFS directory vectors made by boxo (the library behind Kubo's `ipfs add`) for
// piecestore/tests/directories.rs: a plain directory with a subdirectory, and a
// HAMT-sharded directory of 300 entries (fanout 256, so some buckets hold sub-shards), all
// CIDv1 sha2-256 with raw leaves as `ipfs add --cid-version=1` makes them. Every block is
// printed (by multihash), with the CID each path resolves to. Regenerate with `go run . > ../boxo.json`.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	bsrv "github.com/ipfs/boxo/blockservice"
	blockstore "github.com/ipfs/boxo/blockstore"
	offline "github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

type out struct {
	Roots  map[string]string `json:"roots"`
	Paths  map[string]string `json:"paths"`
	Blocks map[string]string `json:"blocks"` // hex multihash -> hex bytes
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func main() {
	ctx := context.Background()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	dag := merkledag.NewDAGService(bsrv.New(bs, offline.Exchange(bs)))
	v1 := cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}
	res := out{Roots: map[string]string{}, Paths: map[string]string{}, Blocks: map[string]string{}}
	file := func(content string) ipld.Node {
		n := merkledag.NewRawNode([]byte(content))
		must(dag.Add(ctx, n))
		return n
	}

	// A plain directory: two files and a subdirectory with one more.
	sub, err := uio.NewBasicDirectory(dag, uio.WithCidBuilder(v1))
	must(err)
	c := file("in the subdirectory\n")
	must(sub.AddChild(ctx, "c.txt", c))
	subNode, err := sub.GetNode()
	must(err)
	must(dag.Add(ctx, subNode))
	dir, err := uio.NewBasicDirectory(dag, uio.WithCidBuilder(v1))
	must(err)
	a := file("hello\n")
	b := file("the second file, a little longer than the first one\n")
	// Added out of order: the node's links are sorted by name.
	must(dir.AddChild(ctx, "sub", subNode))
	must(dir.AddChild(ctx, "b.bin", b))
	must(dir.AddChild(ctx, "a.txt", a))
	dirNode, err := dir.GetNode()
	must(err)
	must(dag.Add(ctx, dirNode))
	res.Roots["plain"] = dirNode.Cid().String()
	res.Paths["plain/a.txt"] = a.Cid().String()
	res.Paths["plain/b.bin"] = b.Cid().String()
	res.Paths["plain/sub"] = subNode.Cid().String()
	res.Paths["plain/sub/c.txt"] = c.Cid().String()

	// A sharded directory.
	hd, err := uio.NewHAMTDirectory(dag, 0, uio.WithCidBuilder(v1))
	must(err)
	for i := 0; i < 300; i++ {
		name := fmt.Sprintf("file-%03d.txt", i)
		f := file(fmt.Sprintf("entry %d\n", i))
		must(hd.AddChild(ctx, name, f))
		res.Paths["hamt/"+name] = f.Cid().String()
	}
	hNode, err := hd.GetNode()
	must(err)
	must(dag.Add(ctx, hNode))
	res.Roots["hamt"] = hNode.Cid().String()

	keys, err := bs.AllKeysChan(ctx)
	must(err)
	for k := range keys {
		blk, err := bs.Get(ctx, k)
		must(err)
		// The blockstore keys blocks by multihash.
		res.Blocks[hex.EncodeToString(k.Hash())] = hex.EncodeToString(blk.RawData())
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	must(enc.Encode(res))
}
