package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder maps a YAML node tree onto the configuration structs, so that every
// error names the key path at fault ("backends[0].max_conns") as well as its
// line, and records the line of every key present, so that defaults apply
// only to absent keys, an explicit 0 is reported, not replaced, and errors
// found after decoding can name a line too.
type decoder struct {
	getenv func(string) string
	lines  map[string]int // key path -> line of the key, or of the list element
}

// errorAt returns an error at key path key, on the line of node n.
func errorAt(n *yaml.Node, key, format string, args ...any) *Error {
	return &Error{Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// decode stores node into v (addressable), at key path path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // "key:" with no value, or ~: the zero value, as if absent
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := d.expand(n, path); err != nil {
			return err
		}
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			return errorAt(n, path, "%v", err)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		return d.decode(n, v.Elem(), path)
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	case reflect.Slice:
		return d.decodeSlice(n, v, path)
	case reflect.Map:
		return d.decodeMap(n, v, path)
	default:
		return d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return errorAt(n, keyOrTop(path), "must be a mapping of keys to values")
	}
	fields := yamlFields(v.Type())
	return d.eachPair(n, path, func(k, val *yaml.Node, keyPath string) error {
		i, ok := fields[k.Value]
		if !ok {
			return errorAt(k, keyPath, "unknown key")
		}
		return d.decode(val, v.Field(i), keyPath)
	})
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return errorAt(n, path, "must be a mapping of names to values")
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	return d.eachPair(n, path, func(k, val *yaml.Node, keyPath string) error {
		elem := reflect.New(v.Type().Elem()).Elem()
		if err := d.decode(val, elem, keyPath); err != nil {
			return err
		}
		v.SetMapIndex(reflect.ValueOf(k.Value), elem)
		return nil
	})
}

// eachPair calls f for each key node k of mapping n, rejecting duplicate and
// non-scalar keys and recording the line of each key.
func (d *decoder) eachPair(n *yaml.Node, path string, f func(k, val *yaml.Node, keyPath string) error) error {
	seen := make(map[string]int, len(n.Content)/2) // key -> its line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode {
			return errorAt(k, keyOrTop(path), "keys must be strings")
		}
		keyPath := join(path, k.Value)
		if k.Value == "<<" {
			return errorAt(k, keyPath, "merge keys are not supported")
		}
		if first, dup := seen[k.Value]; dup {
			return errorAt(k, keyPath, "duplicate key (first on line %d)", first)
		}
		seen[k.Value] = k.Line
		d.lines[keyPath] = k.Line
		if err := f(k, n.Content[i+1], keyPath); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.SequenceNode {
		return errorAt(n, path, "must be a list")
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, elem := range n.Content {
		p := index(path, i)
		d.lines[p] = elem.Line
		if err := d.decode(elem, s.Index(i), p); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.ScalarNode {
		return errorAt(n, path, "must be a single value, not a list or mapping")
	}
	if err := d.expand(n, path); err != nil {
		return err
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		msg := fmt.Sprintf("invalid value %q", n.Value)
		switch v.Kind() {
		case reflect.Bool:
			msg = fmt.Sprintf("must be true or false, not %q", n.Value)
		case reflect.Int, reflect.Int32, reflect.Int64:
			msg = fmt.Sprintf("must be a whole number, not %q", n.Value)
		}
		return errorAt(n, path, "%s", msg)
	}
	return nil
}

// expand replaces ${NAME}, ${NAME:-default} and $$ in a scalar's value. A
// plain (unquoted) scalar is then resolved again, so that "max_conns:
// ${MAX_CONNS}" is a number.
func (d *decoder) expand(n *yaml.Node, path string) error {
	if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "$") {
		return nil
	}
	s, err := expandEnv(n.Value, d.getenv)
	if err != nil {
		return errorAt(n, path, "%v", err)
	}
	n.Value = s
	if n.Style == 0 || n.Style == yaml.TaggedStyle && n.Tag == "!!str" {
		n.Tag = ""
	}
	return nil
}

// expandEnv expands ${NAME} and ${NAME:-default} from getenv, and $$ to a
// literal $. A $ followed by anything else is kept as it is. ${NAME} with
// NAME unset (getenv returns "") is an error; ${NAME:-default} gives default
// when NAME is unset or empty.
func expandEnv(s string, getenv func(string) string) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
			continue
		case '{':
		default:
			b.WriteByte('$')
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s[i:])
		}
		ref := s[i+2 : i+end]
		s = s[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid environment variable name %q in ${%s}", name, ref)
		}
		v := getenv(name)
		if v == "" {
			if !hasDef {
				return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)
			}
			v = def
		}
		b.WriteString(v)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

var fieldCache = map[reflect.Type]map[string]int{}

// yamlFields maps the yaml key of each field of struct type t to its index.
// The configuration types are fixed, so the cache is filled by init.
func yamlFields(t reflect.Type) map[string]int {
	if m, ok := fieldCache[t]; ok {
		return m
	}
	m := make(map[string]int)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	return m
}

func init() {
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			walk(t.Elem())
		case reflect.Struct:
			if _, ok := fieldCache[t]; ok {
				return
			}
			fieldCache[t] = yamlFields(t)
			for i := 0; i < t.NumField(); i++ {
				walk(t.Field(i).Type)
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
}

// join appends key to a key path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func keyOrTop(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// index formats path[i].
func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
