package yamlfile

import (
	"slices"
	"strings"
)

// Suggest returns " (did you mean a or b?)" naming the known keys closest to
// an unknown key name, for an "unknown key" message, or "" when none is
// close: at most two edits away, one for keys shorter than eight characters.
func Suggest(name string, known []string) string {
	best, picks := 3, []string(nil)
	for _, k := range known {
		dist := editDistance(strings.ToLower(name), k)
		limit := min(2, max(1, len(k)/4))
		if dist > limit || dist > best {
			continue
		}
		if dist < best {
			best, picks = dist, nil
		}
		picks = append(picks, k)
	}
	if len(picks) == 0 {
		return ""
	}
	slices.Sort(picks)
	return " (did you mean " + strings.Join(picks, " or ") + "?)"
}

// editDistance counts the single-character insertions, deletions,
// substitutions and swaps of neighbours (optimal string alignment) between a
// and b, with '-' and '_' counted equal so that max-connections finds
// max_connections and kye finds key.
func editDistance(a, b string) int {
	norm := func(s string) []rune { return []rune(strings.ReplaceAll(s, "-", "_")) }
	ra, rb := norm(a), norm(b)
	if len(ra) > 64 || len(rb) > 64 {
		return max(len(ra), len(rb)) // no key is that long: not a typo of one
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
