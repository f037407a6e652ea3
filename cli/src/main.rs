//! The `keystrata` command: keychains, sealed secrets, streaming
//! encryption, signatures, derived keys and rewrap from the shell.
//! docs/CLI.md is the manual; `keystrata --help` and `man keystrata` the
//! reference, generated from `cli.rs`.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

mod cli;
mod cmd;
mod fail;
mod io;
mod open;
mod out;

use cli::{Cli, Command};
use fail::{Failure, Outcome, EXIT_USAGE};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = command()
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return clap_failure(e, &args),
    };
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            report(&f, cli.global.json);
            ExitCode::from(f.exit_code())
        }
    }
}

/// The command line as `--help` shows it: the definitions of `cli.rs`,
/// with the exit codes.
fn command() -> clap::Command {
    Cli::command().after_help(fail::exit_codes_help())
}

fn run(cli: &Cli) -> Outcome {
    let g = &cli.global;
    match &cli.command {
        Command::Keychain(c) => cmd::keychain::run(g, c),
        Command::Seal(a) => cmd::seal::seal(g, a),
        Command::Unseal(a) => cmd::seal::unseal(g, a),
        Command::Encrypt(a) => cmd::stream::encrypt(g, a),
        Command::Decrypt(a) => cmd::stream::decrypt(g, a),
        Command::Sign(a) => cmd::sign::sign(g, a),
        Command::Verify(a) => cmd::sign::verify(g, a),
        Command::Pubkey(a) => cmd::sign::pubkey(g, a),
        Command::Derive(a) => cmd::derive::derive(g, a),
        Command::Rewrap(a) => cmd::rewrap::rewrap(g, a),
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(*shell, &mut command(), "keystrata", &mut out);
            Ok(0)
        }
        Command::Man { dir } => man(dir.as_deref()),
        Command::KmsPlugin { args } => kms_plugin(g, args),
    }
}

/// `keystrata kms-plugin ARGS`: the keystrata-kms-plugin program (the
/// kms-plugin crate) in place of this process, with the keychain and root
/// this command was given. A program of its own, as git's subcommands
/// are, so the gRPC server is not part of every keystrata command.
fn kms_plugin(g: &cli::Global, args: &[std::ffi::OsString]) -> Outcome {
    use std::os::unix::process::CommandExt as _;
    const PROGRAM: &str = "keystrata-kms-plugin";
    // Beside this binary first (make install, target/release), then PATH.
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(PROGRAM))
        .filter(|p| p.is_file());
    let mut cmd = std::process::Command::new(beside.as_deref().unwrap_or(PROGRAM.as_ref()));
    if let Some(k) = &g.keychain {
        cmd.args(["--keychain", k]);
    }
    if let Some(r) = &g.root {
        cmd.args(["--root", r]);
    }
    cmd.args(args);
    // exec only returns on failure.
    let e = cmd.exec();
    Err(if e.kind() == std::io::ErrorKind::NotFound {
        fail::err(
            keystrata::ErrorKind::Unsupported,
            format!(
                "keystrata kms-plugin needs the {PROGRAM} program beside keystrata or on PATH \
                 (make install installs both; or: cargo build --release -p keystrata-kms-plugin \
                 --features etcd,pkcs11,kmip,aws-kms)"
            ),
        )
    } else {
        fail::io(PROGRAM, e)
    })
}

/// The man page on stdout, or every page into `dir`.
fn man(dir: Option<&std::path::Path>) -> Outcome {
    match dir {
        Some(dir) => {
            let at = |e| fail::io(dir.display(), e);
            std::fs::create_dir_all(dir).map_err(at)?;
            clap_mangen::generate_to(Cli::command(), dir).map_err(at)?;
            for entry in std::fs::read_dir(dir).map_err(at)? {
                let path = entry.map_err(at)?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !(name.starts_with("keystrata") && name.ends_with(".1")) {
                    continue;
                }
                let mut page = Vec::new();
                if name == "keystrata.1" {
                    man_page(&mut page).map_err(at)?;
                } else {
                    let text = std::fs::read_to_string(&path).map_err(at)?;
                    page = notes_heading(&text).into_bytes();
                }
                std::fs::write(&path, page).map_err(at)?;
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            man_page(&mut out).map_err(|e| fail::io("writing stdout", e))?;
        }
    }
    Ok(0)
}

/// keystrata(1): clap's page, with the exit status, the environment and
/// where the full manual is.
fn man_page(w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    w.write_all(notes_heading(&String::from_utf8_lossy(&page)).as_bytes())?;
    w.write_all(fail::exit_codes_roff().as_bytes())?;
    w.write_all(MAN_TAIL.as_bytes())
}

/// clap_mangen names a command's after-help text EXTRA; it holds notes.
fn notes_heading(page: &str) -> String {
    page.replace(".SH EXTRA\n", ".SH NOTES\n")
}

const MAN_TAIL: &str = r#".SH ENVIRONMENT
.TP
KEYSTRATA_KEYCHAIN
the keychain location, when --keychain is not given
.TP
KEYSTRATA_ROOT
the root URI, when --root is not given
.TP
KEYSTRATA_ETCD_PASSWORD
the etcd password of an etcd:// or etcds:// location with a user
.PP
A passphrase or PIN comes from the variable or file a root URI names
(passphrase:env:VAR, passphrase:file:FILE, pin-source=env:VAR); AWS
credentials from the AWS SDK's default chain.
.SH SECURITY
Secrets are never taken from the command line. Binary output and derived
keys are not written to a terminal without --force. Output files are
written under a temporary name and renamed into place when complete;
plaintext and derived keys are created with mode 0600.
.SH "SEE ALSO"
age(1), minisign(1), openssl(1); docs/CLI.md, docs/ROOTS.md,
docs/STORES.md, docs/SIGNING.md and docs/STREAMING.md in the keystrata
sources.
"#;

/// Prints a failure on stderr: `keystrata: error: KIND: message`, or with
/// `--json` one line `{"error": {"kind", "message", "exit_code"}}`.
fn report(f: &Failure, json: bool) {
    if json {
        let v = serde_json::json!({
            "error": {
                "kind": f.kind_name(),
                "message": f.message(),
                "exit_code": f.exit_code(),
            }
        });
        eprintln!("{v}");
        return;
    }
    match f {
        Failure::Usage(m) => {
            eprintln!("keystrata: error: {m}\n\nFor more information, try '--help'.")
        }
        Failure::Keystrata(e) => eprintln!("keystrata: error: {}: {}", e.kind(), e.message()),
    }
}

/// A command line clap refused (or `--help`, `--version`).
fn clap_failure(e: clap::Error, args: &[std::ffi::OsString]) -> ExitCode {
    use clap::error::ErrorKind as K;
    let wants_json = args.iter().any(|a| a == "--json");
    if wants_json && !matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or("invalid arguments");
        let msg = first.strip_prefix("error: ").unwrap_or(first);
        report(&Failure::Usage(msg.to_owned()), true);
        return ExitCode::from(EXIT_USAGE);
    }
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Help is not wrapped to the terminal (no `wrap_help`): every line of
    /// every command's help must be short already.
    #[test]
    fn help_lines_fit_in_100_columns() {
        fn check(cmd: &mut clap::Command, path: &str) {
            let help = cmd.render_long_help().to_string();
            for line in help.lines() {
                assert!(line.chars().count() <= 100, "{path}: {line:?}");
            }
            for sub in cmd.get_subcommands_mut() {
                let name = format!("{path} {}", sub.get_name());
                check(sub, &name);
            }
        }
        let mut cmd = command();
        cmd.build();
        check(&mut cmd, "keystrata");
    }
}
