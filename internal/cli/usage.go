package cli

import (
	"slices"
	"strings"

	"github.com/moby/term"
	"github.com/spf13/cobra"
)

// setupUsage installs docker's help layout: common commands first, then
// management commands, then the rest, and the global options.
func setupUsage(root *cobra.Command) {
	cobra.AddTemplateFunc("add", func(a, b int) int { return a + b })
	cobra.AddTemplateFunc("topCommands", topCommands)
	cobra.AddTemplateFunc("managementCommands", managementCommands)
	cobra.AddTemplateFunc("operationCommands", operationCommands)
	cobra.AddTemplateFunc("commandAliases", commandAliases)
	cobra.AddTemplateFunc("wrappedFlagUsages", wrappedFlagUsages)
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate(`{{- if or .Runnable .HasSubCommands}}{{.UsageString}}{{end}}`)
	root.SetHelpCommand(&cobra.Command{
		Use:    "help [command]",
		Short:  "Help about the command",
		Hidden: true,
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if cmd == nil || err != nil || len(rest) > 0 {
				return &unknownHelpTopic{args}
			}
			return cmd.Help()
		},
	})
}

type unknownHelpTopic struct{ args []string }

func (e *unknownHelpTopic) Error() string {
	return "unknown help topic: " + strings.Join(e.args, " ")
}

func topCommands(cmd *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	if cmd.HasParent() {
		return out
	}
	for _, c := range cmd.Commands() {
		if _, ok := c.Annotations["category-top"]; ok && c.IsAvailableCommand() {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b *cobra.Command) int {
		return strings.Compare(pad(a.Annotations["category-top"]), pad(b.Annotations["category-top"]))
	})
	return out
}

func pad(s string) string { return strings.Repeat("0", max(0, 4-len(s))) + s }

func managementCommands(cmd *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() && c.HasSubCommands() {
			out = append(out, c)
		}
	}
	return out
}

func operationCommands(cmd *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, c := range cmd.Commands() {
		if _, top := c.Annotations["category-top"]; top && !cmd.HasParent() {
			continue
		}
		if c.IsAvailableCommand() && !c.HasSubCommands() {
			out = append(out, c)
		}
	}
	return out
}

func commandAliases(cmd *cobra.Command) string {
	if a := cmd.Annotations["aliases"]; a != "" {
		return a
	}
	if len(cmd.Aliases) == 0 {
		return ""
	}
	names := []string{cmd.CommandPath()}
	for _, a := range cmd.Aliases {
		names = append(names, cmd.Parent().CommandPath()+" "+a)
	}
	return strings.Join(names, ", ")
}

func wrappedFlagUsages(cmd *cobra.Command) string {
	width := 80
	if ws, err := term.GetWinsize(0); err == nil && ws.Width > 0 {
		width = int(ws.Width)
	}
	return cmd.Flags().FlagUsagesWrapped(width - 1)
}

const usageTemplate = `Usage:

{{- if not .HasSubCommands}}  {{.UseLine}}{{end}}
{{- if .HasSubCommands}}  {{ .CommandPath}}{{- if .HasAvailableFlags}} [OPTIONS]{{end}} COMMAND{{end}}

{{if ne .Long ""}}{{ .Long | trim }}{{ else }}{{ .Short | trim }}{{end}}
{{- with commandAliases . }}

Aliases:
  {{ . }}
{{- end}}
{{- if .HasExample}}

Examples:
{{ .Example }}
{{- end}}
{{- if .HasParent}}
{{- if .HasAvailableFlags}}

Options:
{{ wrappedFlagUsages . | trimRightSpace}}
{{- end}}
{{- end}}
{{- with topCommands .}}

Common Commands:
{{- range .}}
  {{rpad .Name (add .NamePadding 1)}}{{.Short}}
{{- end}}
{{- end}}
{{- with managementCommands .}}

Management Commands:
{{- range .}}
  {{rpad .Name (add .NamePadding 1)}}{{.Short}}
{{- end}}
{{- end}}
{{- with operationCommands .}}

Commands:
{{- range .}}
  {{rpad .Name .NamePadding }} {{.Short}}
{{- end}}
{{- end}}
{{- if not .HasParent}}
{{- if .HasAvailableFlags}}

Global Options:
{{ wrappedFlagUsages . | trimRightSpace}}
{{- end}}
{{- end}}
{{- if .HasSubCommands }}

Run '{{.CommandPath}} COMMAND --help' for more information on a command.
{{- end}}
`
