// Command commp-hashhash prints the commP of a file computed by go-fil-commp-hashhash, the
// library Boost and Curio use, so the commp benchmark can time a real peer on the same bytes.
//
// Usage: commp-hashhash <file>
// Output (stdout): "<commP hex> <padded size>"; stderr: hashing time in nanoseconds.
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	commp "github.com/filecoin-project/go-fil-commp-hashhash"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: commp-hashhash <file>")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	start := time.Now()
	calc := &commp.Calc{}
	if _, err := io.Copy(calc, bufio.NewReaderSize(f, 1<<20)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	raw, padded, err := calc.Digest()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%s %d\n", hex.EncodeToString(raw), padded)
	fmt.Fprintln(os.Stderr, time.Since(start).Nanoseconds())
}
