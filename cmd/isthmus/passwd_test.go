package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/isthmus-iot/isthmus/devices"
)

// runPasswd runs the built binary's `isthmus passwd args...` with stdin as its
// standard input (a pipe, not a terminal: the scripted path of SPEC §2).
func runPasswd(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runBinary(t, strings.NewReader(stdin), append([]string{"passwd"}, args...)...)
}

// passwdHashLine checks that stdout is exactly one bcrypt hash and a newline, and
// returns the hash.
func passwdHashLine(t *testing.T, stdout string) string {
	t.Helper()
	hash, ok := strings.CutSuffix(stdout, "\n")
	if !ok || strings.Contains(hash, "\n") || len(hash) != 60 || !strings.HasPrefix(hash, "$2a$") {
		t.Fatalf("stdout %q: want one 60-character $2a$ bcrypt hash and a newline", stdout)
	}
	return hash
}

// TestPasswdHash: a piped password gives a hash that the devices file takes
// and that checks true for that password only.
func TestPasswdHash(t *testing.T) {
	const pw = "s3cret"
	stdout, stderr, code := runPasswd(t, pw+"\n")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing on stderr", code, stderr)
	}
	hash := passwdHashLine(t, stdout)
	if strings.Contains(stdout+stderr, pw) {
		t.Fatalf("the password shows in the output: %q %q", stdout, stderr)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != bcrypt.DefaultCost {
		t.Fatalf("cost of %s: %d %v; want the default %d", hash, cost, err, bcrypt.DefaultCost)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)); err != nil {
		t.Fatalf("the hash does not match %q: %v", pw, err)
	}
	for _, other := range []string{"s3cret2", "S3cret", "s3cre", "s3cret\n", ""} {
		if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(other)); !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			t.Errorf("the hash of %q accepts %q (err %v)", pw, other, err)
		}
	}

	// Pasted into a devices file as the docs say, it logs the device in.
	file := fmt.Sprintf("devices:\n  - id: sensor-42\n    password: %q\n    publish: [\"devices/{id}/#\"]\n", hash)
	reg, err := devices.Parse("devices.yaml", []byte(file))
	if err != nil {
		t.Fatalf("devices.Parse refuses the printed hash: %v", err)
	}
	if d, err := reg.Authenticate("sensor-42", pw); err != nil || d.ID != "sensor-42" {
		t.Fatalf("Authenticate(sensor-42, right password) = %v, %v", d, err)
	}
	if _, err := reg.Authenticate("sensor-42", "wrong"); !errors.Is(err, devices.ErrBadCredentials) {
		t.Fatalf("Authenticate(sensor-42, wrong password) = %v, want ErrBadCredentials", err)
	}

	// A new salt each time: the same password never gives the same hash.
	again, _, code := runPasswd(t, pw+"\n")
	if code != 0 || passwdHashLine(t, again) == hash {
		t.Fatalf("second run: exit %d, %q; want a different hash of the same password", code, again)
	}
}

// TestPasswdCost: --cost N is the bcrypt cost written into the hash.
func TestPasswdCost(t *testing.T) {
	for _, cost := range []int{4, 5} {
		stdout, stderr, code := runPasswd(t, "cost-test\n", "--cost", fmt.Sprint(cost))
		if code != 0 || stderr != "" {
			t.Fatalf("--cost %d: exit %d, stderr %q", cost, code, stderr)
		}
		hash := passwdHashLine(t, stdout)
		if want := fmt.Sprintf("$2a$%02d$", cost); !strings.HasPrefix(hash, want) {
			t.Fatalf("--cost %d: hash %s does not start with %s", cost, hash, want)
		}
		if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("cost-test")); err != nil {
			t.Fatalf("--cost %d: %v", cost, err)
		}
	}
}

// TestPasswdInput pins what "the first line of standard input" means: the
// line ending (LF or CRLF) is not part of the password, later lines are
// ignored, other white space is kept, and 72 bytes (bcrypt's limit) pass.
func TestPasswdInput(t *testing.T) {
	long72 := strings.Repeat("x", 71) + "y"
	tests := []struct{ name, stdin, password string }{
		{"LF", "line-pw\n", "line-pw"},
		{"CRLF", "line-pw\r\n", "line-pw"},
		{"no newline", "line-pw", "line-pw"},
		{"first line only", "line-pw\nsecond-line\n", "line-pw"},
		{"spaces kept", "  spaced pw  \n", "  spaced pw  "},
		{"72 bytes", long72 + "\n", long72},
		{"UTF-8", "pässwörd-ü\n", "pässwörd-ü"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runPasswd(t, tt.stdin, "--cost", "4")
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			hash := passwdHashLine(t, stdout)
			if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(tt.password)); err != nil {
				t.Fatalf("the hash does not match %q: %v", tt.password, err)
			}
			if tt.name == "first line only" {
				if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("line-pw\nsecond-line")); err == nil {
					t.Fatal("the second line was taken into the password")
				}
			}
		})
	}
}

// TestPasswdRefusals: each refusal has its exit code (2 usage, 1 unusable
// input), says why on stderr, prints nothing on stdout and never echoes the
// password.
func TestPasswdRefusals(t *testing.T) {
	long73 := strings.Repeat("z", 73)
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string // exact
		secret string // must not be printed
	}{
		{"empty stdin", "", nil, 1, "isthmus passwd: empty password; nothing printed\n", ""},
		{"empty line", "\n", nil, 1, "isthmus passwd: empty password; nothing printed\n", ""},
		{"CR only", "\r\n", nil, 1, "isthmus passwd: empty password; nothing printed\n", ""},
		{"73 bytes", long73 + "\n", nil, 1, "isthmus passwd: the password is 73 bytes; bcrypt takes at most 72\n", long73},
		{"argument", "", []string{"argv-secret-1"}, 2, "isthmus passwd: the password is read from standard input, not from arguments (they show in ps and shell history)\n", "argv-secret-1"},
		{"argument and stdin", "stdin-secret-2\n", []string{"argv-secret-2"}, 2, "isthmus passwd: the password is read from standard input, not from arguments (they show in ps and shell history)\n", "argv-secret-2"},
		{"cost 3", "cost-secret\n", []string{"--cost", "3"}, 2, "isthmus passwd: --cost 3 is out of range: 4 to 31\n", "cost-secret"},
		{"cost 32", "cost-secret\n", []string{"--cost", "32"}, 2, "isthmus passwd: --cost 32 is out of range: 4 to 31\n", "cost-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runPasswd(t, tt.stdin, tt.args...)
			if code != tt.code || stdout != "" || stderr != tt.stderr {
				t.Fatalf("exit %d, stdout %q, stderr %q\nwant exit %d, no stdout, stderr %q", code, stdout, stderr, tt.code, tt.stderr)
			}
			if tt.secret != "" && strings.Contains(stdout+stderr, tt.secret) {
				t.Fatalf("the password shows in the output: %q", stderr)
			}
			// The stdin secret of "argument and stdin" is never read either.
			if tt.name == "argument and stdin" && strings.Contains(stderr, "stdin-secret-2") {
				t.Fatalf("stdin echoed: %q", stderr)
			}
		})
	}

	// A flag error is a usage error: exit 2 with the usage text, no hash.
	stdout, stderr, code := runPasswd(t, "flag-secret\n", "--cost", "ten")
	if code != 2 || stdout != "" || !strings.Contains(stderr, `invalid value "ten" for flag -cost`) ||
		!strings.Contains(stderr, "usage: isthmus passwd [--cost N]") || strings.Contains(stderr, "flag-secret") {
		t.Fatalf("--cost ten: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// -h is help, not an error.
	stdout, stderr, code = runPasswd(t, "", "-h")
	if code != 0 || stdout != "" || !strings.Contains(stderr, "usage: isthmus passwd [--cost N] < password") || !strings.Contains(stderr, "-cost") {
		t.Fatalf("-h: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
