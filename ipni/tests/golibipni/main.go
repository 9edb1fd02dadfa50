// Prints vectors made by go-libipni (the library storetheindex and Boost use) for
// ipni/tests/vectors.rs: an entry chunk, a signed ad, a signed head and a removal ad, from a
// fixed Ed25519 seed (Ed25519 and the libp2p envelope are deterministic, so the Rust side
// must produce the same bytes). Regenerate with `go run . > ../golibipni.json`.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	headschema "github.com/ipni/go-libipni/dagsync/ipnisync/head"
	"github.com/ipni/go-libipni/ingest/schema"
	"github.com/ipni/go-libipni/metadata"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
)

func encode(n ipld.Node) ([]byte, cid.Cid) {
	var buf bytes.Buffer
	if err := dagjson.Encode(n, &buf); err != nil {
		panic(err)
	}
	c, err := schema.Linkproto.Sum(buf.Bytes())
	if err != nil {
		panic(err)
	}
	return buf.Bytes(), c
}

func main() {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		panic(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		panic(err)
	}

	var mhs []multihash.Multihash
	for _, s := range []string{"a", "b", "c"} {
		d := sha256.Sum256([]byte(s))
		mh, _ := multihash.Encode(d[:], multihash.SHA2_256)
		mhs = append(mhs, mh)
	}
	chunkNode, err := schema.EntryChunk{Entries: mhs}.ToNode()
	if err != nil {
		panic(err)
	}
	chunkBytes, chunkCid := encode(chunkNode)

	meta := metadata.Default.New(metadata.IpfsGatewayHttp{}, metadata.FilecoinPieceHttp{})
	md, err := meta.MarshalBinary()
	if err != nil {
		panic(err)
	}
	ad := schema.Advertisement{
		Provider:  id.String(),
		Addresses: []string{"/ip4/127.0.0.1/tcp/3104/http"},
		Entries:   cidlink.Link{Cid: chunkCid},
		ContextID: []byte{0x82, 0x01, 0x02},
		Metadata:  md,
	}
	if err := ad.Sign(priv); err != nil {
		panic(err)
	}
	adNode, err := ad.ToNode()
	if err != nil {
		panic(err)
	}
	adBytes, adCid := encode(adNode)

	rm := schema.Advertisement{
		PreviousID: cidlink.Link{Cid: adCid},
		Provider:   id.String(),
		Addresses:  []string{"/ip4/127.0.0.1/tcp/3104/http"},
		Entries:    schema.NoEntries,
		ContextID:  []byte{0x82, 0x01, 0x02},
		IsRm:       true,
	}
	if err := rm.Sign(priv); err != nil {
		panic(err)
	}
	rmNode, err := rm.ToNode()
	if err != nil {
		panic(err)
	}
	rmBytes, rmCid := encode(rmNode)

	head, err := headschema.NewSignedHead(rmCid, "/indexer/ingest/mainnet", priv)
	if err != nil {
		panic(err)
	}
	headBytes, err := head.Encode()
	if err != nil {
		panic(err)
	}

	out := map[string]string{
		"seed":       hex.EncodeToString(seed),
		"peer_id":    id.String(),
		"no_entries": schema.NoEntries.String(),
		"metadata":   hex.EncodeToString(md),
		"chunk_cid":  chunkCid.String(),
		"chunk":      string(chunkBytes),
		"ad_cid":     adCid.String(),
		"ad":         string(adBytes),
		"rm_cid":     rmCid.String(),
		"rm":         string(rmBytes),
		"head":       string(headBytes),
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
