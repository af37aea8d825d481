package gateway

import (
	"errors"
	"testing"

	"github.com/isthmus-iot/isthmus/devices"
	"github.com/isthmus-iot/isthmus/mqtt"
)

func registry(t *testing.T, text string) *devices.Registry {
	t.Helper()
	r, err := devices.Parse("devices.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The verified-credentials cache never admits what bcrypt would refuse: a
// wrong password after a right one, a disabled device, or an old password
// after the devices file changed it.
func TestPasswordCache(t *testing.T) {
	var a authority
	one := registry(t, "devices:\n  - id: d1\n    password: \""+secHash(t, "old")+"\"\n")
	a.reg.Store(one)
	login := func(pw string) error {
		_, err := a.Authenticate(&mqtt.ConnectRequest{Username: "d1", UsernameFlag: true, Password: []byte(pw), PasswordFlag: true})
		return err
	}
	for i := range 2 { // the second round is served from the cache
		if err := login("old"); err != nil {
			t.Fatalf("round %d: right password refused: %v", i, err)
		}
		if err := login("wrong"); !errors.Is(err, devices.ErrBadCredentials) {
			t.Fatalf("round %d: wrong password: %v", i, err)
		}
	}
	if c := a.verified.Load(); c == nil || c.reg != one {
		t.Fatal("no cache for the registry in force")
	}
	if _, ok := a.verified.Load().m.Load("d1"); !ok {
		t.Fatal("a successful login was not cached")
	}

	a.reg.Store(registry(t, "devices:\n  - id: d1\n    password: \""+secHash(t, "new")+"\"\n"))
	if err := login("old"); !errors.Is(err, devices.ErrBadCredentials) {
		t.Fatalf("old password after the file changed it: %v", err)
	}
	if err := login("new"); err != nil {
		t.Fatalf("new password: %v", err)
	}

	a.reg.Store(registry(t, "devices:\n  - id: d1\n    enabled: false\n    password: \""+secHash(t, "new")+"\"\n"))
	if err := login("new"); !errors.Is(err, devices.ErrDisabled) {
		t.Fatalf("disabled device: %v", err)
	}
}
