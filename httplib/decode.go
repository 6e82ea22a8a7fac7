package httplib

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/mesos-stateful/stateful"
)

// instanceRequest is the body of POST /v1/instances, and the schema every
// request body is checked against (a PATCH may give the same fields).
// Counts are pointers so that "not given" differs from 0.
type instanceRequest struct {
	Name    string                `json:"name"`
	Type    stateful.InstanceType `json:"type"`
	Masters *int                  `json:"masters"`
	Slaves  *int                  `json:"slaves"`
	Spec    stateful.Spec         `json:"spec"`
}

// patchRequest is the body of PATCH /v1/instances/{name}. The spec stays
// raw: which of its fields were given decides what the patch replaces.
type patchRequest struct {
	Name    *string                `json:"name"`
	Type    *stateful.InstanceType `json:"type"`
	Masters *int                   `json:"masters"`
	Slaves  *int                   `json:"slaves"`
	Spec    json.RawMessage        `json:"spec"`
}

var requestSchema = reflect.TypeFor[instanceRequest]()

// maxEcho bounds how much of a client's text (an unknown key, say) is
// repeated in an error message.
const maxEcho = 64

// decodeCreate turns a create request body into the instance to create: the
// request's fields, masters defaulting to 1 for S and MS, the spec completed
// with defaults, all validated. Every error is a *stateful.ValidationError.
func decodeCreate(body []byte, defaults stateful.Spec) (*stateful.Instance, error) {
	if err := checkSchema(body, requestSchema); err != nil {
		return nil, err
	}
	var req instanceRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	var raw struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, &stateful.ValidationError{Msg: fmt.Sprintf("invalid request: %v", err)}
	}
	if err := refuseExplicitZeros(raw.Spec); err != nil {
		return nil, err
	}
	inst := &stateful.Instance{
		Name: req.Name,
		Type: req.Type,
		Spec: req.Spec.WithDefaults(defaults),
	}
	switch {
	case req.Masters != nil:
		inst.Masters = *req.Masters
	case req.Type == stateful.TypeSingle || req.Type == stateful.TypeMasterSlave:
		// S and MS have exactly one master; asking for it is noise.
		inst.Masters = 1
	}
	if req.Slaves != nil {
		inst.Slaves = *req.Slaves
	}
	if err := inst.Validate(); err != nil {
		return nil, err
	}
	return inst, nil
}

// parsePatch checks a PATCH body on its own, before the instance is read:
// the schema, the name against the path, and that it asks for something.
func parsePatch(body []byte, name string) (*patchRequest, error) {
	if err := checkSchema(body, requestSchema); err != nil {
		return nil, err
	}
	var req patchRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	if req.Name != nil && *req.Name != name {
		return nil, &stateful.ValidationError{Field: "name", Msg: fmt.Sprintf(
			"%q does not match the instance in the path, %q; an instance cannot be renamed", echo(*req.Name), name)}
	}
	if req.Slaves == nil && !req.hasSpec() && req.Type == nil && req.Masters == nil {
		return nil, errNothingGiven()
	}
	if err := refuseExplicitZeros(req.Spec); err != nil {
		return nil, err
	}
	return &req, nil
}

// defaultedByZero lists the spec fields (by JSON path below "spec") whose
// zero value Spec.WithDefaults reads as "not given". An explicit 0 or ""
// there would silently become the default, so it is refused; null, like
// leaving the field out, asks for the default. disk is not listed: 0 is a
// real amount ("no disk") that clients marshalling a stateful.Spec send.
var defaultedByZero = map[string][]string{
	"":       {"cpu", "mem", "image", "command", "network", "volume"},
	"health": {"interval_s", "grace_s", "timeout_s"},
}

// refuseExplicitZeros returns a *stateful.ValidationError naming the first
// field of spec (a JSON object that passed checkSchema, or empty) given as
// 0 or "" where that value would mean "use the default".
func refuseExplicitZeros(spec json.RawMessage) error {
	return refuseZerosIn(spec, "")
}

func refuseZerosIn(raw json.RawMessage, sub string) error {
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	prefix := "spec"
	if sub != "" {
		prefix += "." + sub
	}
	var given map[string]json.RawMessage
	if err := json.Unmarshal(raw, &given); err != nil {
		return &stateful.ValidationError{Field: prefix, Msg: fmt.Sprintf("invalid: %v", err)}
	}
	for _, key := range defaultedByZero[sub] {
		v, ok := given[key]
		if !ok {
			continue
		}
		var str string
		switch {
		case len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &str) == nil && str == "":
			return &stateful.ValidationError{Field: join(prefix, key), Msg: `must not be "" (it would silently mean the default); leave it out or give null for the default`}
		case isZeroNumber(v):
			return &stateful.ValidationError{Field: join(prefix, key), Msg: "must not be 0 (0 would silently mean the default); leave it out or give null for the default"}
		}
	}
	if sub == "" {
		return refuseZerosIn(given["health"], "health")
	}
	return nil
}

// isZeroNumber reports whether v is a JSON number equal to 0 (0, 0.0,
// -0, 0e3); a string is never a number here.
func isZeroNumber(v json.RawMessage) bool {
	if len(v) == 0 || v[0] == '"' {
		return false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return err == nil && f == 0
}

func errNothingGiven() error {
	return &stateful.ValidationError{Msg: "nothing to change: give slaves (scale) and/or spec fields (rolling update)"}
}

func (req *patchRequest) hasSpec() bool {
	return len(req.Spec) > 0 && !bytes.Equal(req.Spec, []byte("null"))
}

// buildPatch computes the change req asks of current: slaves replaced, and
// each spec field given replaced whole (a map or the health check is not
// merged; null resets a field to the workload's default), then the result
// completed with defaults and validated as an instance. type and masters
// may be repeated but not changed. A request that changes nothing is an
// error, so a patch always has something to apply.
func buildPatch(req *patchRequest, current *stateful.Instance, defaults stateful.Spec) (Patch, error) {
	if req.Type != nil && *req.Type != current.Type {
		return Patch{}, &stateful.ValidationError{Field: "type", Msg: fmt.Sprintf(
			"cannot be changed (the instance is %s, the request says %q); create a new instance instead", current.Type, echo(string(*req.Type)))}
	}
	if req.Masters != nil && *req.Masters != current.Masters {
		return Patch{}, &stateful.ValidationError{Field: "masters", Msg: fmt.Sprintf(
			"cannot be changed (the instance has %d, the request says %d); only slaves can be scaled", current.Masters, *req.Masters)}
	}
	next := &stateful.Instance{
		Name:    current.Name,
		Type:    current.Type,
		Masters: current.Masters,
		Slaves:  current.Slaves,
		Spec:    current.Spec.Clone(),
	}
	if req.Slaves != nil {
		next.Slaves = *req.Slaves
	}
	if req.hasSpec() {
		spec, err := mergeSpec(current.Spec, req.Spec)
		if err != nil {
			return Patch{}, err
		}
		next.Spec = spec.WithDefaults(defaults)
	}
	// Validate what the request controls, not the stored bookkeeping
	// (status, master ordinal): those are the service's to keep consistent.
	if err := next.Validate(); err != nil {
		return Patch{}, err
	}

	patch := Patch{Generation: current.Generation}
	if next.Slaves != current.Slaves {
		patch.Slaves = &next.Slaves
	}
	if req.hasSpec() && !specEqual(next.Spec, current.Spec) {
		patch.Spec = &next.Spec
	}
	if patch.Slaves == nil && patch.Spec == nil {
		switch {
		case req.Slaves == nil && !req.hasSpec():
			return Patch{}, errNothingGiven()
		case !req.hasSpec():
			return Patch{}, &stateful.ValidationError{Field: "slaves", Msg: fmt.Sprintf("is already %d; nothing to change", current.Slaves)}
		case req.Slaves == nil:
			return Patch{}, &stateful.ValidationError{Field: "spec", Msg: "the instance already has this spec; nothing to change"}
		}
		return Patch{}, &stateful.ValidationError{Msg: "nothing to change: the instance already has these slaves and this spec"}
	}
	return patch, nil
}

// mergeSpec returns current with the fields given in raw (a JSON object that
// passed checkSchema) replaced.
func mergeSpec(current stateful.Spec, raw json.RawMessage) (stateful.Spec, error) {
	var given map[string]json.RawMessage
	if err := json.Unmarshal(raw, &given); err != nil {
		return stateful.Spec{}, &stateful.ValidationError{Field: "spec", Msg: fmt.Sprintf("invalid: %v", err)}
	}
	spec := current.Clone()
	v := reflect.ValueOf(&spec).Elem()
	fields := jsonFields(v.Type())
	for key := range given {
		if f, ok := fields[key]; ok {
			v.FieldByIndex(f.Index).SetZero()
		}
	}
	if err := decodeStrict(raw, &spec); err != nil {
		return stateful.Spec{}, err
	}
	return spec, nil
}

// specEqual compares specs as their JSON documents, so that an empty map and
// a missing one (the same document) are equal.
func specEqual(a, b stateful.Spec) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// decodeStrict decodes a body that passed checkSchema. It is strict too
// (unknown fields, trailing data) so that it never accepts what the schema
// check might have missed.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &stateful.ValidationError{Msg: fmt.Sprintf("invalid request: %v", err)}
	}
	if dec.More() {
		return &stateful.ValidationError{Msg: "invalid request: more than one JSON value"}
	}
	return nil
}

// checkSchema walks the JSON in body against the Go type schema and returns
// a *stateful.ValidationError naming the first field that is wrong: a
// syntax error, an unknown or repeated key (keys match exactly, unlike
// encoding/json's case-insensitive matching), a value of the wrong JSON
// type, a number that does not fit, or anything after the one top-level
// object. null is accepted anywhere below the top level as "not given".
//
// Walking the schema also bounds the nesting: a value deeper than the
// schema is a type error, so no body can make the walk recurse deeply.
func checkSchema(body []byte, schema reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if len(bytes.TrimSpace(body)) == 0 {
		return &stateful.ValidationError{Msg: "the request body is empty; want a JSON object"}
	}
	if err := checkValue(dec, schema, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return &stateful.ValidationError{Msg: "the request body must hold exactly one JSON object; there is more after it"}
	}
	return nil
}

func checkValue(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(err, dec)
	}
	if tok == nil {
		if path == "" {
			return &stateful.ValidationError{Msg: "the request body is null; want a JSON object"}
		}
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return wrongType(path, "an object", tok)
		}
		fields := jsonFields(t)
		return checkObject(dec, path, func(key string) (reflect.Type, error) {
			f, ok := fields[key]
			if !ok {
				return nil, &stateful.ValidationError{Field: join(path, echo(key)), Msg: "unknown field" + knownFields(path, fields)}
			}
			return f.Type, nil
		})
	case reflect.Map:
		if tok != json.Delim('{') {
			return wrongType(path, "an object", tok)
		}
		return checkObject(dec, path, func(string) (reflect.Type, error) { return t.Elem(), nil })
	case reflect.Slice:
		if tok != json.Delim('[') {
			return wrongType(path, "an array", tok)
		}
		for i := 0; dec.More(); i++ {
			if err := checkValue(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return syntaxError(err, dec)
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return wrongType(path, "a string", tok)
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return wrongType(path, "true or false", tok)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			return wrongType(path, "a whole number", tok)
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return &stateful.ValidationError{Field: path, Msg: fmt.Sprintf("%s is out of range", echo(n.String()))}
			}
			return &stateful.ValidationError{Field: path, Msg: fmt.Sprintf("must be a whole number, got %s", echo(n.String()))}
		}
	case reflect.Float32, reflect.Float64:
		n, ok := tok.(json.Number)
		if !ok {
			return wrongType(path, "a number", tok)
		}
		if _, err := strconv.ParseFloat(n.String(), t.Bits()); err != nil {
			return &stateful.ValidationError{Field: path, Msg: fmt.Sprintf("%s is out of range", echo(n.String()))}
		}
	default:
		// A schema type this walker does not know is a programming error;
		// refuse rather than accept unchecked input.
		return &stateful.ValidationError{Field: path, Msg: fmt.Sprintf("cannot be checked (unsupported %s)", t)}
	}
	return nil
}

// checkObject walks the members of an object whose '{' was read; typeOf
// gives each key's schema type.
func checkObject(dec *json.Decoder, path string, typeOf func(key string) (reflect.Type, error)) error {
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(err, dec)
		}
		key, ok := tok.(string)
		if !ok {
			return &stateful.ValidationError{Field: path, Msg: "invalid JSON: object key is not a string"}
		}
		field := join(path, echo(key))
		if seen[key] {
			return &stateful.ValidationError{Field: field, Msg: "is given twice"}
		}
		seen[key] = true
		t, err := typeOf(key)
		if err != nil {
			return err
		}
		if err := checkValue(dec, t, field); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return syntaxError(err, dec)
}

// jsonFields maps the JSON names of t's exported fields to the fields, as
// encoding/json names them.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		fields[name] = f
	}
	return fields
}

// knownFields lists the fields an object accepts, for the unknown-field
// error, so a typo can be fixed without reading the docs.
func knownFields(path string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	where := "the request"
	if path != "" {
		where = path
	}
	return fmt.Sprintf(" (%s takes %s)", where, strings.Join(names, ", "))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func wrongType(path, want string, tok json.Token) error {
	if path == "" {
		return &stateful.ValidationError{Msg: fmt.Sprintf("the request body must be a JSON object, not %s", describe(tok))}
	}
	return &stateful.ValidationError{Field: path, Msg: fmt.Sprintf("must be %s, not %s", want, describe(tok))}
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

func syntaxError(err error, dec *json.Decoder) error {
	if err == nil {
		return nil
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &stateful.ValidationError{Msg: "invalid JSON: the body ends in the middle of a value"}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &stateful.ValidationError{Msg: fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))}
	}
	return &stateful.ValidationError{Msg: fmt.Sprintf("invalid JSON near byte %d: %v", dec.InputOffset(), err)}
}

// echo shortens client text repeated in an error message.
func echo(s string) string { return truncate(s, maxEcho) }

// checkPolicy asks the workload's policy, if the service has one, whether
// a request may set the spec fields in raw (the request's "spec" object).
func checkPolicy(svc Service, raw json.RawMessage) error {
	policy, ok := svc.(stateful.SpecPolicy)
	if !ok || len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var given map[string]json.RawMessage
	if err := json.Unmarshal(raw, &given); err != nil {
		return &stateful.ValidationError{Field: "spec", Msg: fmt.Sprintf("invalid: %v", err)}
	}
	if len(given) == 0 {
		return nil
	}
	var requested stateful.Spec
	if err := decodeStrict(raw, &requested); err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(given))
	err := policy.AllowSpec(keys, requested)
	if err == nil {
		return nil
	}
	if _, ok := stateful.AsValidationError(err); ok {
		return err
	}
	return &stateful.ValidationError{Field: "spec", Msg: err.Error()}
}

// createSpec returns the "spec" object of a create request body that
// passed checkSchema.
func createSpec(body []byte) json.RawMessage {
	var req struct {
		Spec json.RawMessage `json:"spec"`
	}
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	return req.Spec
}
