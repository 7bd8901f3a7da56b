# TODO - scenario 5, web half (issue 12), NOT a test yet: the name does not
# match test_*.sh, so CTest does not register it, and it fails if run by hand.
# `hostkit new web` is now on main (templates/web: {{name}}.service and
# {{name}}.socket). To add it, copy test_sd_cli_new_worker.sh to
# test_sd_cli_new_web.sh (re-run cmake) and change:
#   hostkit new web demo; the generated demo.socket installed next to
#   demo.service unchanged (plus the WatchdogSec drop-in only);
#   systemctl enable --now demo.socket; the service starts on the first
#   connection; GET / and the health endpoints answer (inside the container);
#   the same hardening checks on the running process (RestrictAddressFamilies
#   as generated); systemctl stop demo -> Result=success;
#   and docs/systemd.md#tested-against gains the scenario.
. "$(dirname "$0")/lib.sh" || exit 1
fail "TODO: scenario 5 for hostkit new web is not written yet"
