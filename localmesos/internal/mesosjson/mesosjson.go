// Package mesosjson writes mesos-go messages in JSON the way Mesos itself
// does (stout's protobuf-to-JSON conversion), where mesos-go's own encoder
// differs: doubles always have a decimal point (15.0, not 15); absent
// fields are left out (no "attributes":null, no empty arrays); unset
// fields that have an explicit [default = ...] in the proto, unless
// deprecated, are written with that default ("protocol":"IPv4"); no
// whitespace.
package mesosjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/gogo/protobuf/proto"
)

// Marshal renders a mesos-go message as Mesos writes it in JSON.
func Marshal(m json.Marshaler) ([]byte, error) {
	raw, err := m.MarshalJSON()
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("mesosjson: %w", err)
	}
	var out bytes.Buffer
	if _, err := value(dec, tok, reflect.TypeOf(m), &out); err != nil {
		return nil, fmt.Errorf("mesosjson: %w", err)
	}
	return out.Bytes(), nil
}

// Double writes a double as Mesos 1.12 does: the shortest decimal that
// reads back as the same value, always with a decimal point (15.0).
func Double(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		// Not valid JSON; Mesos never has one to write.
		return "0.0"
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// deprecated fields keep their default out of the output, as in Mesos.
var deprecated = map[string]bool{
	"mesos.Resource.role":      true,
	"mesos.FrameworkInfo.role": true,
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// value writes the JSON value that starts with tok, of Go type t (nil if
// unknown). It reports whether the value is absent (null, or an empty
// array), which the caller leaves out.
func value(dec *json.Decoder, tok json.Token, t reflect.Type, out *bytes.Buffer) (absent bool, err error) {
	t = deref(t)
	switch v := tok.(type) {
	case nil:
		return true, nil
	case json.Delim:
		switch v {
		case '{':
			return false, object(dec, t, out)
		case '[':
			var elem reflect.Type
			if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
				elem = t.Elem()
			}
			start := out.Len()
			out.WriteByte('[')
			n := 0
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return false, err
				}
				if n > 0 {
					out.WriteByte(',')
				}
				var item bytes.Buffer
				if _, err := value(dec, tok, elem, &item); err != nil {
					return false, err
				}
				if item.Len() == 0 {
					item.WriteString("null")
				}
				out.Write(item.Bytes())
				n++
			}
			if _, err := dec.Token(); err != nil { // ']'
				return false, err
			}
			if n == 0 {
				out.Truncate(start)
				return true, nil
			}
			out.WriteByte(']')
			return false, nil
		}
		return false, fmt.Errorf("unexpected %v", v)
	case json.Number:
		if t != nil && (t.Kind() == reflect.Float64 || t.Kind() == reflect.Float32) {
			f, err := v.Float64()
			if err != nil {
				return false, err
			}
			out.WriteString(Double(f))
			return false, nil
		}
		out.WriteString(v.String())
	case string:
		writeString(out, v)
	case bool:
		out.WriteString(strconv.FormatBool(v))
	default:
		return false, fmt.Errorf("unexpected token %v", tok)
	}
	return false, nil
}

type member struct {
	key  string
	body []byte
}

// object writes an object with its members in the proto's field order,
// adding the defaults of unset fields.
func object(dec *json.Decoder, t reflect.Type, out *bytes.Buffer) error {
	fields := map[string]reflect.StructField{}
	var order []string
	if t != nil && t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f
			order = append(order, name)
		}
	}
	present := map[string][]byte{}
	var extra []member
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := kt.(string)
		if !ok {
			return errors.New("object key is not a string")
		}
		vt, err := dec.Token()
		if err != nil {
			return err
		}
		var ft reflect.Type
		if f, ok := fields[key]; ok {
			ft = f.Type
		} else if t != nil && t.Kind() == reflect.Map {
			ft = t.Elem()
		}
		var body bytes.Buffer
		absent, err := value(dec, vt, ft, &body)
		if err != nil {
			return err
		}
		if absent {
			continue
		}
		if _, ok := fields[key]; ok {
			present[key] = body.Bytes()
		} else {
			extra = append(extra, member{key, body.Bytes()})
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return err
	}
	out.WriteByte('{')
	n := 0
	write := func(key string, body []byte) {
		if n > 0 {
			out.WriteByte(',')
		}
		writeString(out, key)
		out.WriteByte(':')
		out.Write(body)
		n++
	}
	for _, name := range order {
		if body, ok := present[name]; ok {
			write(name, body)
		} else if def, ok := defaultOf(t, fields[name]); ok {
			write(name, def)
		}
	}
	for _, m := range extra {
		write(m.key, m.body)
	}
	out.WriteByte('}')
	return nil
}

// defaultOf renders the [default = ...] of an optional scalar field, if it
// has one and is not deprecated.
func defaultOf(owner reflect.Type, f reflect.StructField) ([]byte, bool) {
	tag := f.Tag.Get("protobuf")
	if tag == "" {
		return nil, false
	}
	var def, enum, name string
	optional := false
	for _, part := range strings.Split(tag, ",") {
		switch {
		case part == "opt":
			optional = true
		case strings.HasPrefix(part, "def="):
			def = strings.TrimPrefix(part, "def=")
		case strings.HasPrefix(part, "enum="):
			enum = strings.TrimPrefix(part, "enum=")
		case strings.HasPrefix(part, "name="):
			name = strings.TrimPrefix(part, "name=")
		}
	}
	if !optional || !strings.Contains(tag, "def=") {
		return nil, false
	}
	if deprecated["mesos."+owner.Name()+"."+name] {
		return nil, false
	}
	var out bytes.Buffer
	switch k := deref(f.Type).Kind(); {
	case enum != "":
		n, err := strconv.ParseInt(def, 10, 32)
		if err != nil {
			return nil, false
		}
		label := ""
		for l, v := range proto.EnumValueMap(enum) {
			if int64(v) == n {
				label = l
			}
		}
		if label == "" {
			return nil, false
		}
		writeString(&out, label)
	case k == reflect.String:
		writeString(&out, def)
	case k == reflect.Bool:
		out.WriteString(def)
	case k == reflect.Float64 || k == reflect.Float32:
		v, err := strconv.ParseFloat(def, 64)
		if err != nil {
			return nil, false
		}
		out.WriteString(Double(v))
	case k >= reflect.Int && k <= reflect.Uint64:
		out.WriteString(def)
	default:
		return nil, false
	}
	return out.Bytes(), true
}

func writeString(out *bytes.Buffer, s string) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	out.Truncate(out.Len() - 1) // Encode's newline
}

// Document marshals a JSON document built of maps, slices and scalars (an
// endpoint's answer, such as /master/state) with its float64 values
// written as Mesos writes doubles.
func Document(v any) ([]byte, error) {
	return json.Marshal(doubles(v))
}

func doubles(v any) any {
	switch x := v.(type) {
	case float64:
		return json.RawMessage(Double(x))
	case float32:
		return json.RawMessage(Double(float64(x)))
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = doubles(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = doubles(e)
		}
		return out
	}
	return v
}
