package command

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
)

// StatusError is a command failure with an exit status. Status, when set,
// is printed instead of the cause.
type StatusError struct {
	Cause      error
	Status     string
	StatusCode int
}

func (e StatusError) Error() string {
	if e.Status != "" {
		return e.Status
	}
	if e.Cause != nil {
		return e.Cause.Error()
	}
	return ""
}

func (e StatusError) Unwrap() error { return e.Cause }

// FlagError formats a flag parsing error like docker: the error, the usage
// line and a pointer to --help; the exit status is 125.
func FlagError(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	return StatusError{
		Cause:      err,
		Status:     fmt.Sprintf("%s\n\nUsage:  %s\n\nRun '%s --help' for more information", err, cmd.UseLine(), cmd.CommandPath()),
		StatusCode: 125,
	}
}

// WithHelp prefixes err with the binary name and suggests --help, as the
// create and run commands report invalid options.
func WithHelp(cmd *cobra.Command, err error) error {
	return fmt.Errorf("%s: %w\n\nRun '%s --help' for more information", cmd.Root().Name(), err, cmd.CommandPath())
}

func plural(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func argsError(cmd *cobra.Command, what, hint string) error {
	return fmt.Errorf("%s: '%s' %s\n\nUsage:  %s\n\n%s '%s --help' for more information",
		cmd.Root().Name(), cmd.CommandPath(), what, cmd.UseLine(), hint, cmd.CommandPath())
}

// NoArgs rejects positional arguments; on a command with subcommands the
// argument is reported as an unknown command.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return fmt.Errorf("%s: unknown command: %s %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), args[0], cmd.UseLine(), cmd.CommandPath())
	}
	return argsError(cmd, "accepts no arguments", "Run")
}

// RequiresMinArgs requires at least n arguments.
func RequiresMinArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires at least %d %s", n, plural("argument", n)), "See")
	}
}

// RequiresMaxArgs allows at most n arguments.
func RequiresMaxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) <= n {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires at most %d %s", n, plural("argument", n)), "Run")
	}
}

// RequiresRangeArgs requires between lo and hi arguments.
func RequiresRangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires at least %d and at most %d %s", lo, hi, plural("argument", hi)), "Run")
	}
}

// ExactArgs requires exactly n arguments.
func ExactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires %d %s", n, plural("argument", n)), "Run")
	}
}

var (
	connectFailed = regexp.MustCompile(`failed to connect to the docker API at ([^;\s]+); check if the path is correct and if the daemon is running: [^\n]*`)
	berthNames    = strings.NewReplacer(
		"Cannot connect to the Docker daemon", "Cannot connect to the berth daemon",
		"Is the docker daemon running", "Is the berth daemon running",
		"connect to the docker API", "connect to the berth API",
	)
)

// Message is the text printed for err: the client library's connection
// errors name the berth daemon, as docker's name the Docker daemon.
func Message(err error) string {
	if err == nil {
		return ""
	}
	msg := connectFailed.ReplaceAllString(err.Error(), "Cannot connect to the berth daemon at $1. Is the berth daemon running?")
	return berthNames.Replace(msg)
}

// ShowHelp prints a management command's help on stderr, as docker does
// when it is run without a subcommand.
func ShowHelp(cmd *cobra.Command, _ []string) error {
	cmd.SetOut(cmd.ErrOrStderr())
	return cmd.Help()
}
