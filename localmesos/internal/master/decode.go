package master

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/gogo/protobuf/proto"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// decodedCall is a scheduler call plus what the Go struct cannot say: the
// call's type is a non-pointer field, so "absent" and "UNKNOWN" look the
// same once decoded.
type decodedCall struct {
	call    scheduler.Call
	hasType bool
}

// decodeProtobufCall decodes a protobuf body. gogo's Unmarshal enforces
// required fields just as Mesos' ParseFromString does.
// Both decoders return Mesos' 400 text ("" on success).
func decodeProtobufCall(body []byte) (decodedCall, string) {
	var d decodedCall
	if err := d.call.Unmarshal(body); err != nil {
		return d, "Failed to parse body into Call protobuf"
	}
	d.hasType = hasTopLevelField(body, 2)
	return d, ""
}

// hasTopLevelField scans protobuf wire bytes for a field number.
func hasTopLevelField(b []byte, field uint64) bool {
	for len(b) > 0 {
		key, n := proto.DecodeVarint(b)
		if n == 0 {
			return false
		}
		b = b[n:]
		if key>>3 == field {
			return true
		}
		switch key & 7 {
		case 0:
			_, n = proto.DecodeVarint(b)
			if n == 0 {
				return false
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return false
			}
			b = b[8:]
		case 2:
			l, n := proto.DecodeVarint(b)
			if n == 0 || uint64(len(b)-n) < l {
				return false
			}
			b = b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return false
			}
			b = b[4:]
		default:
			return false
		}
	}
	return false
}

// decodeJSONCall decodes a JSON body the way Mesos' JSON-to-protobuf
// conversion does: enum values it does not know are dropped (so a required
// enum becomes missing), null means unset, unknown fields are ignored, and
// missing required fields are reported by their full path.
func decodeJSONCall(body []byte) (decodedCall, string) {
	var d decodedCall
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return d, "Failed to parse body into JSON: " + jsonSyntaxError(body, err)
	}
	if dec.More() {
		off := dec.InputOffset()
		return d, "Failed to parse body into JSON: " + syntaxAt(body, int(off))
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return d, "Failed to convert JSON into Call protobuf: Expecting a JSON object"
	}
	var missing []string
	pruneAndCheck(obj, reflect.TypeOf(scheduler.Call{}), "", &missing)
	if len(missing) > 0 {
		return d, "Failed to convert JSON into Call protobuf: Missing required fields: " + strings.Join(missing, ", ")
	}
	if v, ok := obj["type"]; ok && v != nil {
		d.hasType = true
	}
	clean, err := json.Marshal(obj)
	if err != nil {
		return d, "Failed to convert JSON into Call protobuf: " + err.Error()
	}
	if err := d.call.UnmarshalJSON(clean); err != nil {
		return d, "Failed to convert JSON into Call protobuf: " + err.Error()
	}
	return d, ""
}

// jsonSyntaxError renders a parse error as picojson (Mesos' parser) does:
// "syntax error at line N near: <rest of the line>".
func jsonSyntaxError(body []byte, err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return syntaxAt(body, int(se.Offset))
	default:
		// io.ErrUnexpectedEOF and friends: the input ended early.
		return syntaxAt(body, len(body))
	}
}

func syntaxAt(body []byte, offset int) string {
	if offset > len(body) {
		offset = len(body)
	}
	// encoding/json reports the offset after the offending byte.
	if offset > 0 && offset < len(body) {
		offset--
	}
	line := 1 + bytes.Count(body[:offset], []byte("\n"))
	rest := body[offset:]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	return fmt.Sprintf("syntax error at line %d near: %s", line, rest)
}

// pruneAndCheck walks a decoded JSON object alongside the Go type of the
// message it encodes. It deletes enum values the type does not know and
// nulls, and records required fields that are absent.
func pruneAndCheck(obj map[string]any, t reflect.Type, prefix string, missing *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("protobuf")
		if tag == "" {
			continue
		}
		name := jsonName(f)
		if name == "" {
			continue
		}
		path := prefix + name
		v, present := obj[name]
		if present && v == nil {
			delete(obj, name)
			present = false
		}
		if present {
			if enum := tagValue(tag, "enum"); enum != "" {
				known := proto.EnumValueMap(enum)
				if known != nil {
					switch x := v.(type) {
					case string:
						if _, ok := known[x]; !ok {
							delete(obj, name)
							present = false
						}
					case []any:
						kept := x[:0]
						for _, item := range x {
							s, isString := item.(string)
							if _, ok := known[s]; ok || !isString {
								kept = append(kept, item)
							}
						}
						obj[name] = kept
					}
				}
			} else {
				elem := f.Type
				for elem.Kind() == reflect.Pointer {
					elem = elem.Elem()
				}
				switch elem.Kind() {
				case reflect.Struct:
					if sub, ok := v.(map[string]any); ok {
						pruneAndCheck(sub, elem, path+".", missing)
					}
				case reflect.Slice:
					item := elem.Elem()
					for item.Kind() == reflect.Pointer {
						item = item.Elem()
					}
					if item.Kind() == reflect.Struct {
						if list, ok := v.([]any); ok {
							for j, e := range list {
								if sub, ok := e.(map[string]any); ok {
									pruneAndCheck(sub, item, fmt.Sprintf("%s[%d].", path, j), missing)
								}
							}
						}
					}
				}
			}
		}
		if !present && strings.Contains(","+tag+",", ",req,") {
			*missing = append(*missing, path)
		}
	}
}

func jsonName(f reflect.StructField) string {
	j := f.Tag.Get("json")
	if j == "" || j == "-" {
		return ""
	}
	name, _, _ := strings.Cut(j, ",")
	return name
}

func tagValue(tag, key string) string {
	for _, part := range strings.Split(tag, ",") {
		if k, v, ok := strings.Cut(part, "="); ok && k == key {
			return v
		}
	}
	return ""
}
