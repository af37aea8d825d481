package devices

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/isthmus-iot/isthmus/internal/yamlfile"
)

// The decoder walks the yaml.Node tree itself instead of calling
// yaml.Unmarshal: that is the only way to give every problem a line, a
// column and a key path, and to report all of them in one pass.
//
// The file is not ${VAR}-expanded as the configuration is: bcrypt hashes
// are full of $.

// MaxFileSize is the largest devices file Load and Parse accept. The YAML
// tree of a file takes many times its size in memory.
const MaxFileSize = 16 << 20

const (
	// maxErrors stops a broken generated file from producing millions of
	// lines: past it, one last error says that the list was cut.
	maxErrors = 1000
	// maxVisits bounds the nodes the decoder visits. A node reached through
	// YAML aliases is visited once per use, so a file of aliases to aliases
	// (merge keys in particular) could otherwise cost the square of its size.
	maxVisits = 10_000_000
	// maxIDLen bounds an id; it is a user name in logs and presence topics.
	maxIDLen = 256
)

// Load reads and parses a devices file. The error is an os error if the file
// cannot be read, otherwise Parse's.
func Load(path string) (*Registry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// One byte more than the limit tells a file at the limit from a larger one
	// without reading a mistyped /dev/zero to the end.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses the content of a devices file. file is used only in error
// messages. Every problem is reported, as Errors sorted by position, in an
// error that matches ErrInvalidFile; the Registry is nil then.
func Parse(file string, data []byte) (*Registry, error) {
	if len(data) > MaxFileSize {
		return nil, &fileErrors{Errors{{File: file, Msg: fmt.Sprintf("the file is larger than %d MiB, the limit for a devices file", MaxFileSize>>20)}}}
	}
	d := &decoder{file: file, budget: maxVisits, ids: map[string]*yaml.Node{}, cns: map[string]*yaml.Node{}}
	d.walk = yamlfile.Walker{Report: d.errAt, Visit: d.visit}
	r := newRegistry(file)
	if root, ok := d.walk.Root(data, "the devices file", "a mapping with a devices: list (and optionally anonymous:)"); ok && root != nil {
		d.registry(r, root)
	}
	if len(d.errs) > 0 {
		errs := d.errs.Sorted()
		if d.truncated {
			errs = append(errs, &Error{File: file, Msg: fmt.Sprintf("stopped after %d problems; fix these and check again", maxErrors)})
		}
		return nil, &fileErrors{errs}
	}
	r.dummyCost = commonCost(r.devices)
	return r, nil
}

type decoder struct {
	file      string
	errs      Errors
	truncated bool // more than maxErrors
	budget    int
	ids       map[string]*yaml.Node // first node of each id
	cns       map[string]*yaml.Node // first node of each cert_cn
	walk      yamlfile.Walker       // reports through errAt, charges visit
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	if d.full() {
		return
	}
	d.errAt(n.Line, n.Column, path, fmt.Sprintf(format, args...))
}

// full reports whether maxErrors problems are recorded: the walk stops
// there, as the file is refused anyway.
func (d *decoder) full() bool {
	if len(d.errs) >= maxErrors {
		d.truncated = true
	}
	return d.truncated
}

func (d *decoder) errAt(line, col int, path, msg string) {
	if d.full() {
		return
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Col: col, Path: path, Msg: msg})
}

// visit charges one node to the budget; false once it is spent (reported once).
func (d *decoder) visit(n *yaml.Node, path string) bool {
	if d.budget <= 0 || d.full() {
		return false
	}
	d.budget--
	if d.budget == 0 {
		d.errorf(n, path, "the file expands too many YAML aliases (more than %d nodes visited)", maxVisits)
		return false
	}
	return true
}

var topKeys = []string{"anonymous", "devices"}

func (d *decoder) registry(r *Registry, root *yaml.Node) {
	for _, p := range d.walk.Pairs("", root) {
		switch p.Key.Value {
		case "devices":
			d.devices(r, p.Value)
		case "anonymous":
			d.anonymous(r, p.Value)
		default:
			d.errorf(p.Key, p.Key.Value, "unknown key%s", suggest(p.Key.Value, topKeys))
		}
	}
}

func (d *decoder) devices(r *Registry, n *yaml.Node) {
	n = yamlfile.Deref(n)
	if yamlfile.IsNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "devices", "expected a list of devices (- id: …), got %s", yamlfile.Describe(n))
		return
	}
	for i, item := range n.Content {
		path := "devices[" + strconv.Itoa(i) + "]"
		if !d.visit(item, path) {
			return
		}
		if e := d.device(path, yamlfile.Deref(item)); e != nil {
			r.devices = append(r.devices, e.dev)
			r.byID[e.dev.ID] = e
			if e.dev.CertCN != "" {
				r.byCN[e.dev.CertCN] = e.dev
			}
		}
	}
}

var deviceKeys = []string{"cert_cn", "enabled", "id", "labels", "password", "publish", "subscribe"}

// device decodes one list item; nil if anything in it is wrong.
func (d *decoder) device(path string, n *yaml.Node) *entry {
	if yamlfile.IsNull(n) {
		d.errorf(n, path, "empty list item: expected a device (id: …)")
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a device, a mapping with id, password, cert_cn, publish, subscribe…, got %s", yamlfile.Describe(n))
		return nil
	}
	before := len(d.errs)
	dev := &Device{Enabled: true}
	var idNode, pwNode, cnNode *yaml.Node
	var pubItems, subItems []item
	hasID, hasPW, hasCN, unknown := false, false, false, false
	for _, p := range d.walk.Pairs(path, n) {
		key, val := p.Key.Value, yamlfile.Deref(p.Value)
		child := path + "." + key
		if yamlfile.IsNull(val) {
			continue // written without a value: absent
		}
		switch key {
		case "id":
			hasID = true
			if s, ok := d.walk.Text(child, val); ok {
				dev.ID, idNode = s, val
			}
		case "password":
			hasPW = true
			if s, ok := d.secret(child, val); ok {
				dev.Password, pwNode = s, val
			}
		case "cert_cn":
			hasCN = true
			if s, ok := d.walk.Text(child, val); ok {
				dev.CertCN, cnNode = s, val
			}
		case "enabled":
			if val.Kind != yaml.ScalarNode || val.ShortTag() != "!!bool" || val.Decode(&dev.Enabled) != nil {
				d.errorf(val, child, "expected true or false, got %s", yamlfile.Describe(val))
			}
		case "publish":
			pubItems = d.patterns(child, val)
		case "subscribe":
			subItems = d.patterns(child, val)
		case "labels":
			dev.Labels = d.labels(child, val)
		default:
			d.errorf(p.Key, child, "unknown key%s", suggest(key, deviceKeys))
			unknown = true
		}
	}

	// The id is checked first: the pattern checks substitute it.
	idOK := false
	switch {
	case !hasID:
		d.errorf(n, path, "missing id: every device needs one (it is the MQTT user name and the {id} of its patterns)")
	case idNode != nil:
		if msg := checkID(dev.ID); msg != "" {
			d.errorf(idNode, path+".id", "the id %s", msg)
		} else if first, dup := d.ids[dev.ID]; dup {
			d.errorf(idNode, path+".id", "duplicate id %q (first at line %d)", dev.ID, first.Line)
		} else {
			d.ids[dev.ID] = idNode
			idOK = true
		}
	}
	if pwNode != nil {
		if msg := checkHash(dev.Password); msg != "" {
			d.errorf(pwNode, path+".password", "%s", msg)
		}
	}
	if cnNode != nil {
		if msg := checkCN(dev.CertCN); msg != "" {
			d.errorf(cnNode, path+".cert_cn", "%s", msg)
		} else if first, dup := d.cns[dev.CertCN]; dup {
			d.errorf(cnNode, path+".cert_cn", "cert_cn %q is already the cert_cn of the device at line %d: a certificate must name one device", dev.CertCN, first.Line)
		} else {
			d.cns[dev.CertCN] = cnNode
		}
	}
	// An unknown key is likely a misspelt password or cert_cn: its error says it all.
	if !hasPW && !hasCN && !unknown {
		d.errorf(n, path, "neither password nor cert_cn: the device could never log in (add a hash made by `isthmus passwd`, or the CN of its client certificate)")
	}
	// With a bad id, patterns are checked with a stand-in so that only their
	// own problems are reported.
	subst := dev.ID
	if !idOK {
		subst = "id"
	}
	dev.Publish, dev.Subscribe = texts(pubItems), texts(subItems)
	pub := d.compile(path+".publish", pubItems, subst)
	sub := d.compile(path+".subscribe", subItems, subst)
	if len(d.errs) > before {
		return nil
	}
	return &entry{dev: dev, pub: pub, sub: sub}
}

var anonymousKeys = []string{"publish", "subscribe"}

func (d *decoder) anonymous(r *Registry, n *yaml.Node) {
	n = yamlfile.Deref(n)
	if yamlfile.IsNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "anonymous", "expected a mapping with publish: and subscribe: lists, got %s", yamlfile.Describe(n))
		return
	}
	for _, p := range d.walk.Pairs("anonymous", n) {
		key, val := p.Key.Value, yamlfile.Deref(p.Value)
		child := "anonymous." + key
		if yamlfile.IsNull(val) {
			continue
		}
		switch key {
		case "publish", "subscribe":
			if acl := d.compile(child, d.patterns(child, val), ""); acl != nil {
				if key == "publish" {
					r.anonPub = acl
				} else {
					r.anonSub = acl
				}
			}
		default:
			d.errorf(p.Key, child, "unknown key%s", suggest(key, anonymousKeys))
		}
	}
}

// item is a pattern as written, where it was written.
type item struct {
	text  string
	node  *yaml.Node
	index int // in the list as written
}

func texts(items []item) []string {
	if len(items) == 0 {
		return nil
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.text
	}
	return out
}

// patterns decodes a list of topic filters.
func (d *decoder) patterns(path string, n *yaml.Node) []item {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf(" (write [%q] for one pattern)", n.Value)
		}
		d.errorf(n, path, "expected a list of topic filters, got %s%s", yamlfile.Describe(n), hint)
		return nil
	}
	items := make([]item, 0, len(n.Content))
	for i, written := range n.Content {
		child := path + "[" + strconv.Itoa(i) + "]"
		if !d.visit(written, child) {
			break
		}
		it := yamlfile.Deref(written)
		if yamlfile.IsNull(it) {
			d.errorf(it, child, "empty list item: expected a topic filter")
			continue
		}
		if s, ok := d.walk.Text(child, it); ok {
			items = append(items, item{s, it, i})
		}
	}
	return items
}

// compile checks every pattern at its position and returns the ACL, or nil
// if one is wrong. An absent list allows nothing.
func (d *decoder) compile(path string, items []item, id string) *ACL {
	if len(items) == 0 {
		return denyAll
	}
	ok := true
	for _, it := range items {
		if _, msg := expand(it.text, id); msg != "" {
			d.errorf(it.node, path+"["+strconv.Itoa(it.index)+"]", "%s", msg)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	acl, err := CompileACL(texts(items), id)
	if err != nil {
		panic("devices: a checked pattern does not compile: " + err.Error()) // expand is the single check
	}
	return acl
}

func (d *decoder) labels(path string, n *yaml.Node) map[string]string {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of names to values (labels: {site: plant-1}), got %s", yamlfile.Describe(n))
		return nil
	}
	m := map[string]string{}
	for _, p := range d.walk.Pairs(path, n) {
		child := path + "." + p.Key.Value
		val := yamlfile.Deref(p.Value)
		if yamlfile.IsNull(val) {
			m[p.Key.Value] = ""
			continue
		}
		if s, ok := d.walk.Text(child, val); ok {
			m[p.Key.Value] = s
		}
	}
	return m
}

// secret is str for a password: its messages never show the value, which
// may be a plaintext password.
func (d *decoder) secret(path string, n *yaml.Node) (string, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!timestamp":
			return n.Value, true
		}
	}
	what := map[yaml.Kind]string{yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.AliasNode: "an alias"}[n.Kind]
	if what == "" {
		what = "a value with tag " + n.ShortTag()
	}
	d.errorf(n, path, "expected a bcrypt hash as a string, got %s", what)
	return "", false
}

// bcryptAlphabet is the base-64 alphabet of bcrypt's salt and checksum.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// checkHash returns what makes h unusable as a bcrypt hash, or "". A
// bcrypt hash is $2a$, $2b$ or $2y$, a two-digit cost, $, and 53 characters
// (22 of salt, 31 of checksum). The messages never show h.
func checkHash(h string) string {
	const passwd = "run `isthmus passwd` and paste the hash it prints"
	if h == "" {
		return "empty password hash: remove the key if the device logs in by certificate only"
	}
	if !strings.HasPrefix(h, "$") {
		return "a plaintext password is refused: only bcrypt hashes are stored here; " + passwd
	}
	if len(h) < 4 || h[3] != '$' || !slices.Contains([]string{"$2a", "$2b", "$2y"}, h[:3]) {
		return "not a bcrypt hash: only $2a$, $2b$ and $2y$ hashes are supported; " + passwd
	}
	if len(h) != 60 {
		return fmt.Sprintf("malformed bcrypt hash: %d characters instead of 60 ($2a$NN$ and 53 characters); %s", len(h), passwd)
	}
	cost, err := strconv.Atoi(h[4:6])
	if err != nil || h[4] < '0' || h[4] > '9' || h[6] != '$' {
		return "malformed bcrypt hash: the cost after " + h[:4] + " is not two digits and a $; " + passwd
	}
	if cost < 4 || cost > 31 {
		return fmt.Sprintf("malformed bcrypt hash: cost %d is outside 4..31; %s", cost, passwd)
	}
	for i := 7; i < len(h); i++ {
		if strings.IndexByte(bcryptAlphabet, h[i]) < 0 {
			return fmt.Sprintf("malformed bcrypt hash: character %d is not in bcrypt's base-64 alphabet; %s", i+1, passwd)
		}
	}
	return ""
}

// checkCN returns what makes a cert_cn unusable, or "".
func checkCN(cn string) string {
	if cn == "" {
		return "empty cert_cn: remove the key if the device logs in by password only"
	}
	if !utf8.ValidString(cn) {
		return "cert_cn is not valid UTF-8"
	}
	for _, r := range cn {
		if unicode.IsControl(r) {
			return "cert_cn contains the control character " + strconv.QuoteRune(r)
		}
	}
	return ""
}

// commonCost returns the bcrypt cost most hashes have (the higher on a tie),
// DefaultCost when there are none.
func commonCost(devs []*Device) int {
	count := map[int]int{}
	best, bestN := 10, 0
	for _, dev := range devs {
		if len(dev.Password) != 60 {
			continue
		}
		c, err := strconv.Atoi(dev.Password[4:6])
		if err != nil {
			continue
		}
		count[c]++
		if n := count[c]; n > bestN || n == bestN && c > best {
			best, bestN = c, n
		}
	}
	return best
}

// suggest proposes the known keys closest to an unknown one, or lists them
// all.
func suggest(name string, known []string) string {
	if s := yamlfile.Suggest(name, known); s != "" {
		return s
	}
	return " (known keys: " + strings.Join(known, ", ") + ")"
}
