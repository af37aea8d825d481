package frames

// Optional holds a field that may be absent (encoded as null or omitted at the end of the list)
// and has no default, so that "absent" stays distinct from the zero value. It mirrors sql.Null:
// V is meaningful only when Valid is true. AMQP 1.0 §1.4 (composite types).
type Optional[T any] struct {
	V     T
	Valid bool
}

// Some returns a present Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{V: v, Valid: true} }

// Get returns the value and whether it is present.
func (o Optional[T]) Get() (T, bool) { return o.V, o.Valid }

// Or returns the value when present, else def (for example the spec's "absent means 4" of header.priority).
func (o Optional[T]) Or(def T) T {
	if o.Valid {
		return o.V
	}
	return def
}
