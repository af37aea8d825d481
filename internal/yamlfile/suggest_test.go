package yamlfile

import "testing"

func TestSuggest(t *testing.T) {
	keys := []string{"cert_cn", "enabled", "id", "labels", "password", "publish", "subscribe", "max_connections", "key", "cert", "cert_file", "port", "host"}
	cases := []struct{ name, want string }{
		{"pasword", " (did you mean password?)"},
		{"PASSWORD", " (did you mean password?)"},               // the name is lower-cased
		{"cert-cn", " (did you mean cert_cn?)"},                 // - and _ are equal
		{"max-connections", " (did you mean max_connections?)"}, // at no cost
		{"max_conections", " (did you mean max_connections?)"},
		{"kye", " (did you mean key?)"}, // a swap is one edit
		{"cert_fil", " (did you mean cert_file?)"},
		{"crt", " (did you mean cert?)"},          // short keys: one edit
		{"post", " (did you mean host or port?)"}, // ties: all, sorted
		{"ky", " (did you mean key?)"},
		{"publsh", " (did you mean publish?)"},
		{"subscirbe", " (did you mean subscribe?)"},
		{"labes", " (did you mean labels?)"},
		{"enable", " (did you mean enabled?)"},
		{"pwd", ""},                   // too far from password
		{"cn", ""},                    // two edits from id, too many for a short key
		{"zzzzzzzzzzzzzzzzzzzzz", ""}, // nothing close
		{"", ""},
	}
	for _, tc := range cases {
		if got := Suggest(tc.name, keys); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := Suggest("a", nil); got != "" {
		t.Errorf("no known keys: %q", got)
	}
}

func TestEditDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"a", "", 1},
		{"", "abc", 3},
		{"key", "key", 0},
		{"kye", "key", 1}, // swap of neighbours
		{"ky", "key", 1},
		{"keey", "key", 1},
		{"kex", "key", 1},
		{"max-connections", "max_connections", 0},
		{"ca", "abc", 3}, // optimal string alignment: a swapped pair is not edited again
		{"é€", "€é", 1},  // runes, not bytes
		{string(make([]byte, 65)), "key", 65},
	}
	for _, tc := range cases {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := editDistance(tc.b, tc.a); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d (symmetric)", tc.b, tc.a, got, tc.want)
		}
	}
}
