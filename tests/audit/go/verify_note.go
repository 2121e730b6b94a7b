// Checks a signed note with golang.org/x/mod/sumdb/note, an implementation of the C2SP signed-note
// format that owes nothing to the registry: the verifier key is the first argument, the note is read from
// stdin. Prints the note's body and exits 0 when a signature by that key verifies, exits 1 otherwise.
package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"
)

func main() {
	verifier, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "verifier key:", err)
		os.Exit(2)
	}
	msg, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading the note:", err)
		os.Exit(2)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(1)
	}
	fmt.Print(n.Text)
}
