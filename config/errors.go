package config

import "github.com/isthmus-iot/isthmus/internal/yamlfile"

// Error is one problem in a configuration, positioned at the key or value that
// causes it. Line and Col refer to the file as written (before ${VAR}
// expansion); they are 0 when the Config was built in code and has no source
// positions.
type Error = yamlfile.Error

// Errors is every problem found in one configuration, sorted by position.
// Parse and Validate return it (as error) so that a user fixes all problems in
// one round instead of one per run. It is the type of devices.Errors too.
type Errors = yamlfile.Errors

// asError turns an empty list into a nil error: a nil Errors stored in an
// error interface would not compare equal to nil.
func asError(es Errors) error {
	if len(es) == 0 {
		return nil
	}
	return es.Sorted()
}

// At returns an error positioned at key path in the file the Config came
// from (or at its nearest written ancestor), for problems found outside this
// package, such as routes that do not compile.
func (c *Config) At(path, msg string) *Error {
	k := &checker{c: c}
	k.keyErr(path, "%s", msg)
	return k.errs[0]
}
