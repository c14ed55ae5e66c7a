// Package inspect prints objects the way docker inspect does: an indented
// JSON array by default, compact JSON with "json", or a Go template per
// object. It also holds the top-level "berth inspect".
package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/template"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/format"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// GetFunc fetches one object: its typed value and its raw JSON.
type GetFunc func(ctx context.Context, ref string) (any, []byte, error)

// FormatHelp is the --format usage of inspect commands.
const FormatHelp = "Format output using a custom template:\n" +
	"'json':             Print in JSON format\n" +
	"'TEMPLATE':         Print output using the given Go template.\n" +
	"Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"

// Inspect fetches each reference and prints them with tmplText ("" for an
// indented JSON array). Fetch errors are collected and returned together
// after the others are printed.
func Inspect(ctx context.Context, out io.Writer, refs []string, tmplText string, get GetFunc) error {
	var tmpl *template.Template
	if tmplText != "" && tmplText != format.JSONKey {
		t, err := format.Parse(tmplText)
		if err != nil {
			return command.StatusError{StatusCode: 64, Status: err.Error()}
		}
		tmpl = t
	}
	var raws [][]byte
	var buf bytes.Buffer
	var errs []error
	for _, ref := range refs {
		v, raw, err := get(ctx, ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if tmpl == nil {
			raws = append(raws, raw)
			continue
		}
		if err := execute(&buf, tmpl, v, raw); err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case tmpl != nil:
		if buf.Len() == 0 {
			buf.WriteByte('\n')
		}
		_, _ = buf.WriteTo(out)
	default:
		if err := writeJSON(out, raws, tmplText == format.JSONKey); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return command.StatusError{StatusCode: 1, Status: command.Message(err)}
	}
	return nil
}

// execute runs the template on the typed value, and on the raw JSON as a
// map when the typed value lacks a field the template names.
func execute(buf *bytes.Buffer, tmpl *template.Template, v any, raw []byte) error {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, v); err != nil {
		if raw == nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		var m any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("unable to read inspect data: %w", err)
		}
		b.Reset()
		if err := tmpl.Option("missingkey=error").Execute(&b, m); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
	}
	buf.Write(b.Bytes())
	buf.WriteByte('\n')
	return nil
}

func writeJSON(out io.Writer, raws [][]byte, compact bool) error {
	if len(raws) == 0 {
		_, err := io.WriteString(out, "[]\n")
		return err
	}
	arr := append([]byte("["), bytes.Join(raws, []byte(","))...)
	arr = append(arr, ']')
	var b bytes.Buffer
	var err error
	if compact {
		err = json.Compact(&b, arr)
	} else {
		err = json.Indent(&b, arr, "", "    ")
	}
	if err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err = b.WriteTo(out)
	return err
}

// Container returns a GetFunc for containers; size asks for sizes.
func Container(c *client.Client, size bool) GetFunc {
	return func(ctx context.Context, ref string) (any, []byte, error) {
		r, err := c.ContainerInspect(ctx, ref, client.ContainerInspectOptions{Size: size})
		return r.Container, r.Raw, err
	}
}

// Image returns a GetFunc for images.
func Image(c *client.Client) GetFunc {
	return func(ctx context.Context, ref string) (any, []byte, error) {
		var raw bytes.Buffer
		r, err := c.ImageInspect(ctx, ref, client.ImageInspectWithRawResponse(&raw))
		return r.InspectResponse, raw.Bytes(), err
	}
}

// NewInspectCommand returns the top-level "berth inspect", which looks a
// reference up as a container, then as an image (or only as --type).
func NewInspectCommand(cli *command.Cli) *cobra.Command {
	var tmplText, typ string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Args:  command.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			get, err := anyObject(cli.Client(), typ, size)
			if err != nil {
				return err
			}
			return Inspect(cmd.Context(), cli.Out(), args, tmplText, get)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVarP(&tmplText, "format", "f", "", FormatHelp)
	f.StringVar(&typ, "type", "", "Only inspect objects of the given type")
	f.BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	return cmd
}

func anyObject(c *client.Client, typ string, size bool) (GetFunc, error) {
	switch typ {
	case "container":
		return Container(c, size), nil
	case "image":
		return Image(c), nil
	case "":
	default:
		return nil, fmt.Errorf("%q is not a valid value for --type", typ)
	}
	getters := []GetFunc{Container(c, size), Image(c)}
	return func(ctx context.Context, ref string) (any, []byte, error) {
		for _, get := range getters {
			v, raw, err := get(ctx, ref)
			if err == nil || !cerrdefs.IsNotFound(err) {
				return v, raw, err
			}
		}
		return nil, nil, fmt.Errorf("Error: No such object: %s", ref)
	}, nil
}
