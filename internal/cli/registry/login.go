package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/internal/cli/command"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type loginOptions struct {
	server, user, password string
	passwordStdin          bool
}

// NewLoginCommand returns "berth login".
func NewLoginCommand(cli *command.Cli) *cobra.Command {
	var o loginOptions
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Long:  "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
		Args:  command.RequiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				o.server = args[0]
			}
			return runLogin(cmd.Context(), cli, o)
		},
		Annotations:           map[string]string{"category-top": "8"},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVarP(&o.user, "username", "u", "", "Username")
	f.StringVarP(&o.password, "password", "p", "", "Password or Personal Access Token (PAT)")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

// readPasswordOptions checks the password flags and reads
// --password-stdin, warning about a password given on the command line.
func readPasswordOptions(cli *command.Cli, o *loginOptions) error {
	if o.password != "" && o.passwordStdin {
		return errors.New("conflicting options: cannot specify both --password and --password-stdin")
	}
	if o.password != "" {
		fmt.Fprintln(cli.Err(), "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
	}
	if !o.passwordStdin {
		return nil
	}
	if o.user == "" {
		return errors.New("the --password-stdin option requires --username to be set")
	}
	b, err := io.ReadAll(cli.In())
	if err != nil {
		return err
	}
	o.password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	return nil
}

func runLogin(ctx context.Context, cli *command.Cli, o loginOptions) error {
	if err := readPasswordOptions(cli, &o); err != nil {
		return err
	}
	key := Key(o.server)
	store := Open(cli.Options.ConfigDir, cli.Err())
	var stored registry.AuthConfig
	if o.user == "" && o.password == "" {
		stored = store.Get(key)
	}
	if stored.Username != "" && stored.Password != "" {
		stored.ServerAddress = key
		if msg, err := loginStored(ctx, cli, store, stored); err == nil {
			printStatus(cli, msg)
			return nil
		}
	}
	auth, err := askCredentials(cli, o, stored.Username, key)
	if err != nil {
		return err
	}
	res, err := cli.Client().RegistryLogin(ctx, client.RegistryLoginOptions{
		Username: auth.Username, Password: auth.Password, ServerAddress: auth.ServerAddress,
	})
	if err != nil {
		return err
	}
	if err := saveCredentials(cli, store, auth, res.Auth); err != nil {
		return err
	}
	printStatus(cli, res.Auth.Status)
	return nil
}

// loginStored logs in with the stored credentials, as docker tries before
// asking for new ones.
func loginStored(ctx context.Context, cli *command.Cli, store *Store, auth registry.AuthConfig) (string, error) {
	fmt.Fprintf(cli.Err(), "Authenticating with existing credentials... [Username: %s]\n", auth.Username)
	fmt.Fprintf(cli.Err(), "\n Info -> To login with a different account, run '%[1]s logout' followed by '%[1]s login'\n\n\n", rootName)
	res, err := cli.Client().RegistryLogin(ctx, client.RegistryLoginOptions{
		Username: auth.Username, Password: auth.Password, ServerAddress: auth.ServerAddress,
	})
	if err != nil {
		if cerrdefs.IsUnauthorized(err) {
			fmt.Fprintln(cli.Err(), "Stored credentials invalid or expired")
		} else {
			fmt.Fprintln(cli.Err(), "Login did not succeed, error:", command.Message(err))
		}
		return "", err
	}
	return res.Auth.Status, saveCredentials(cli, store, auth, res.Auth)
}

// rootName is the program name in messages.
const rootName = "berth"

func printStatus(cli *command.Cli, status string) {
	if status == "" {
		status = "Login Succeeded"
	}
	fmt.Fprintln(cli.Out(), status)
}

// saveCredentials stores what the login used, or the identity token the
// registry gave in exchange for the password, with docker's reminder that
// the file holds them in clear.
func saveCredentials(cli *command.Cli, store *Store, auth registry.AuthConfig, res registry.AuthResponse) error {
	if res.IdentityToken != "" {
		auth.Password = ""
		auth.IdentityToken = res.IdentityToken
	}
	written, err := store.Save(auth)
	if err != nil {
		return fmt.Errorf("Error saving credentials: %w", err)
	}
	if written {
		fmt.Fprintf(cli.Err(), "\nWARNING! Your credentials are stored unencrypted in '%s'.\n\n", store.Path())
	}
	return nil
}

// askCredentials completes the user name and password from a terminal,
// the password without echo.
func askCredentials(cli *command.Cli, o loginOptions, defaultUser, key string) (registry.AuthConfig, error) {
	user, password := strings.TrimSpace(o.user), strings.TrimSpace(o.password)
	if (user == "" || password == "") && !cli.In().IsTerminal() {
		return registry.AuthConfig{}, errors.New("Error: Cannot perform an interactive login from a non TTY device")
	}
	if user == "" {
		msg := "Username: "
		if defaultUser != "" {
			msg = fmt.Sprintf("Username (%s): ", defaultUser)
		}
		var err error
		if user, err = command.Prompt(cli.In(), cli.Out(), msg); err != nil {
			return registry.AuthConfig{}, err
		}
		if user == "" {
			user = defaultUser
		}
		if user == "" {
			return registry.AuthConfig{}, errors.New("Error: Non-null Username Required")
		}
	}
	if password == "" {
		var err error
		if password, err = cli.In().PromptSecret(cli.Out(), "Password: "); err != nil {
			return registry.AuthConfig{}, err
		}
		if password == "" {
			return registry.AuthConfig{}, errors.New("Error: Password Required")
		}
	}
	return registry.AuthConfig{Username: user, Password: password, ServerAddress: key}, nil
}

// NewLogoutCommand returns "berth logout".
func NewLogoutCommand(cli *command.Cli) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Long:  "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.",
		Args:  command.RequiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) > 0 {
				server = args[0]
			}
			return runLogout(cli, server)
		},
		Annotations:           map[string]string{"category-top": "9"},
		DisableFlagsInUseLine: true,
	}
}

func runLogout(cli *command.Cli, server string) error {
	key := Key(server)
	keys := []string{key}
	if key != IndexServer {
		// Older clients stored a registry under its address as typed.
		keys = append(keys, server, "http://"+key, "https://"+key)
	}
	store := Open(cli.Options.ConfigDir, cli.Err())
	removed, err := store.Erase(keys...)
	if err != nil {
		return err
	}
	if !removed {
		fmt.Fprintln(cli.Out(), "Not logged in to", key)
	} else {
		fmt.Fprintln(cli.Out(), "Removing login credentials for", key)
	}
	if path, ok := store.InDockerConfig(key); ok {
		fmt.Fprintf(cli.Err(), "WARNING: credentials for %s in %s are still used; berth does not change that file\n", key, path)
	}
	return nil
}
