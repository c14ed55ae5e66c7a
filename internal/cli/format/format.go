// Package format renders command output like docker's --format: Go
// templates with docker's functions, the "table" directive (aligned with
// text/tabwriter, a header row built from the same template) and "json".
package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode"

	"github.com/docker/cli/templates"
)

// Format directives.
const (
	TableKey = "table"
	JSONKey  = "json"
	// JSONTemplate prints each row as one JSON object.
	JSONTemplate = "{{json .}}"
	// QuietTemplate prints IDs only.
	QuietTemplate = "{{.ID}}"
)

// TableHelp is the --format usage of list commands.
const TableHelp = "Format output using a custom template:\n" +
	"'table':            Print output in table format with column headers (default)\n" +
	"'table TEMPLATE':   Print output in table format using the given Go template\n" +
	"'json':             Print in JSON format\n" +
	"'TEMPLATE':         Print output using the given Go template.\n" +
	"Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"

// Format is a --format value.
type Format string

// IsTable reports whether the format starts with the table directive.
func (f Format) IsTable() bool { return strings.HasPrefix(string(f), TableKey) }

// IsJSON reports whether the format is the json directive.
func (f Format) IsJSON() bool { return string(f) == JSONKey }

// Contains reports whether the format mentions sub.
func (f Format) Contains(sub string) bool { return strings.Contains(string(f), sub) }

// Template returns the Go template text of the format: the json directive
// expands, the table directive is dropped, and \t, \n escapes become the
// characters.
func (f Format) Template() string {
	s := string(f)
	switch s {
	case TableKey:
		return ""
	case JSONKey:
		return JSONTemplate
	}
	s = strings.TrimPrefix(s, TableKey)
	s = strings.Trim(s, " ")
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(s)
}

// Parse parses a template with docker's template functions.
func Parse(text string) (*template.Template, error) {
	t, err := templates.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

// Header maps a row's field names to column titles. Its Label method
// serves templates that call .Label "key".
type Header map[string]string

// Label returns the title of a label column: the last dotted component of
// the key, with dashes and underscores as spaces.
func (Header) Label(name string) string {
	parts := strings.Split(name, ".")
	return strings.NewReplacer("-", " ", "_", " ").Replace(parts[len(parts)-1])
}

// Write renders rows with f to out. A table gets a header row executed on
// header with docker's header functions, and columns aligned with three
// spaces of padding.
func Write[T any](out io.Writer, f Format, header Header, rows []T) error {
	tmpl, err := Parse(f.Template())
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, row := range rows {
		if err := tmpl.Execute(&buf, row); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		buf.WriteByte('\n')
	}
	if !f.IsTable() {
		_, err := buf.WriteTo(out)
		return err
	}
	tw := tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	_ = tmpl.Funcs(templates.HeaderFunctions).Execute(tw, header)
	_, _ = tw.Write([]byte{'\n'})
	_, _ = buf.WriteTo(tw)
	return tw.Flush()
}

// MarshalMethods marshals a row context as a JSON object of its exported
// niladic methods with one result, as docker's {{json .}} on list rows.
func MarshalMethods(x any) ([]byte, error) {
	v := reflect.ValueOf(x)
	t := v.Type()
	m := make(map[string]any)
	for i := range v.NumMethod() {
		meth := t.Method(i)
		fn := v.Method(i)
		if !unicode.IsUpper(rune(meth.Name[0])) || meth.Name == "MarshalJSON" ||
			fn.Type().NumIn() != 0 || fn.Type().NumOut() != 1 {
			continue
		}
		m[meth.Name] = fn.Call(nil)[0].Interface()
	}
	return json.Marshal(m)
}
