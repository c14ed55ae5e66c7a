// Package system holds berth version, berth info and the system management
// command.
package system

import (
	"context"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/berth-dev/berth/internal/cli/command"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/inspect"
	"github.com/docker/cli/templates"
	apisystem "github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const versionTemplate = `{{with .Client -}}
Client:
 Version:	{{.Version}}
 API version:	{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:	{{.GoVersion}}
 Git commit:	{{.GitCommit}}
 Built:	{{.BuildTime}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:	{{.Version}}
  API version:	{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:	{{index .Details "GoVersion"}}
  Git commit:	{{index .Details "GitCommit"}}
  Built:	{{index .Details "BuildTime"}}
  OS/Arch:	{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:	{{index .Details "Experimental"}}
  {{- else }}
  Version:	{{$component.Version}}
  {{- range $key := detailsOrder $component}}
  {{$key}}:	{{index $component.Details $key}}
  {{- end}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}`

// versionInfo is what the version template sees (docker's field names).
type versionInfo struct {
	Client clientVersion
	Server *serverVersion
}

type clientVersion struct {
	Version           string `json:"Version,omitempty"`
	APIVersion        string `json:"ApiVersion,omitempty"`
	DefaultAPIVersion string `json:"DefaultAPIVersion,omitempty"`
	GitCommit         string `json:"GitCommit,omitempty"`
	GoVersion         string `json:"GoVersion,omitempty"`
	Os                string `json:"Os,omitempty"`
	Arch              string `json:"Arch,omitempty"`
	BuildTime         string `json:"BuildTime,omitempty"`
	Context           string `json:"Context"`
}

type serverVersion struct {
	Platform      client.PlatformInfo          `json:"Platform"`
	Version       string                       `json:"Version"`
	APIVersion    string                       `json:"ApiVersion"`
	MinAPIVersion string                       `json:"MinAPIVersion,omitempty"`
	Os            string                       `json:"Os"`
	Arch          string                       `json:"Arch"`
	Components    []apisystem.ComponentVersion `json:"Components,omitempty"`
	GitCommit     string                       `json:"GitCommit,omitempty"`
	GoVersion     string                       `json:"GoVersion,omitempty"`
	KernelVersion string                       `json:"KernelVersion,omitempty"`
	Experimental  bool                         `json:"Experimental,omitempty"`
	BuildTime     string                       `json:"BuildTime,omitempty"`
}

// BuildTime is when the CLI was built (RFC 3339); set with -ldflags -X.
var BuildTime = ""

func newClientVersion(apiVersion string) clientVersion {
	return clientVersion{
		Version:           command.Version,
		APIVersion:        apiVersion,
		DefaultAPIVersion: client.MaxAPIVersion,
		GitCommit:         command.GitCommit,
		GoVersion:         runtime.Version(),
		Os:                runtime.GOOS,
		Arch:              runtime.GOARCH,
		BuildTime:         reformatDate(BuildTime),
		Context:           "default",
	}
}

func newServerVersion(sv client.ServerVersionResult) *serverVersion {
	out := &serverVersion{
		Platform: sv.Platform, Version: sv.Version, APIVersion: sv.APIVersion,
		MinAPIVersion: sv.MinAPIVersion, Os: sv.Os, Arch: sv.Arch,
		Experimental: sv.Experimental, //nolint:staticcheck // kept for docker's template fields
	}
	engine := false
	for _, c := range sv.Components {
		if c.Name == "Engine" {
			engine = true
			if c.Details == nil {
				c.Details = map[string]string{}
			}
			bt := c.Details["BuildTime"]
			if bt != "" {
				c.Details["BuildTime"] = reformatDate(bt)
			}
			out.GitCommit = c.Details["GitCommit"]
			out.GoVersion = c.Details["GoVersion"]
			out.KernelVersion = c.Details["KernelVersion"]
			out.Experimental, _ = strconv.ParseBool(c.Details["Experimental"])
			out.BuildTime = bt
		}
		out.Components = append(out.Components, c)
	}
	if !engine {
		out.Components = append(out.Components, apisystem.ComponentVersion{
			Name: "Engine", Version: sv.Version,
			Details: map[string]string{
				"ApiVersion": sv.APIVersion, "MinAPIVersion": sv.MinAPIVersion,
				"Os": sv.Os, "Arch": sv.Arch,
			},
		})
	}
	return out
}

func reformatDate(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.Format(time.ANSIC)
	}
	return s
}

// NewVersionCommand returns "berth version".
func NewVersionCommand(cli *command.Cli) *cobra.Command {
	var tmplText string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  command.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd.Context(), cli, tmplText)
		},
		Annotations:           map[string]string{"category-top": "10"},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&tmplText, "format", "f", "", inspect.FormatHelp)
	return cmd
}

func runVersion(ctx context.Context, cli *command.Cli, tmplText string) error {
	switch tmplText {
	case "":
		tmplText = versionTemplate
	case format.JSONKey:
		tmplText = format.JSONTemplate
	}
	tmpl, err := templates.New("version").Funcs(template.FuncMap{"detailsOrder": detailsOrder}).Parse(tmplText)
	if err != nil {
		return command.StatusError{StatusCode: 64, Status: "template parsing error: " + err.Error()}
	}
	sv, err := cli.Client().ServerVersion(ctx, client.ServerVersionOptions{})
	vd := versionInfo{Client: newClientVersion(cli.Client().ClientVersion())}
	if err == nil {
		vd.Server = newServerVersion(sv)
	}
	tw := tabwriter.NewWriter(cli.Out(), 20, 1, 1, ' ', 0)
	terr := tmpl.Execute(tw, vd)
	_, _ = tw.Write([]byte("\n"))
	_ = tw.Flush()
	if err == nil {
		err = terr
	}
	return err
}

func detailsOrder(c apisystem.ComponentVersion) []string {
	return slices.Sorted(maps.Keys(c.Details))
}
