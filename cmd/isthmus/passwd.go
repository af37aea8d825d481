package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/isthmus-iot/isthmus/devices"
)

// passwdCmd reads a password and prints its bcrypt hash for the devices file
// (SPEC §2). On a terminal it prompts twice without echo; otherwise it reads
// the first line of standard input, so scripts can pipe a generated secret in.
// The password is never printed or logged.
func passwdCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("isthmus passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cost := fs.Int("cost", 0, "bcrypt cost, 4 to 31 (default 10; each step doubles the time a login takes on a Pi, and an attacker's work)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: isthmus passwd [--cost N] < password\n\nReads a password (prompted on a terminal, else the first line of standard input)\nand prints its bcrypt hash for the password: key of the devices file.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return exitError{2}
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "isthmus passwd: the password is read from standard input, not from arguments (they show in ps and shell history)")
		return exitError{2}
	}
	if *cost != 0 && (*cost < 4 || *cost > 31) {
		fmt.Fprintf(stderr, "isthmus passwd: --cost %d is out of range: 4 to 31\n", *cost)
		return exitError{2}
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "isthmus passwd:", err)
		return exitError{1}
	}
	hash, err := devices.HashPassword(pw, *cost)
	if err != nil {
		fmt.Fprintln(stderr, "isthmus passwd:", err)
		return exitError{1}
	}
	fmt.Fprintln(stdout, hash)
	return nil
}

func readPassword(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(a, b) {
			return nil, errors.New("the two passwords differ; nothing printed")
		}
		return checkPassword(a)
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return checkPassword(bytes.TrimRight(line, "\r\n"))
}

func checkPassword(pw []byte) ([]byte, error) {
	switch {
	case len(pw) == 0:
		return nil, errors.New("empty password; nothing printed")
	case len(pw) > 72:
		// bcrypt uses only the first 72 bytes; x/crypto refuses longer ones.
		return nil, fmt.Errorf("the password is %d bytes; bcrypt takes at most 72", len(pw))
	}
	return pw, nil
}
