# The systemd tests' set-up (CTest fixture systemd.tree): removes containers
# that a killed earlier run left behind, then builds the cached Debian tree
# the containers boot from, unless it is there already (see common.sh).
set -u -o pipefail
. "$(dirname "$0")/common.sh" || exit 1
sd_require
sd_reap_stale
t0=$EPOCHSECONDS
sd_tree_ensure
echo "systemd tests: tree $SD_TREE ($(sed -n 's/^mirror=//p' "$SD_TREE/etc/hostkit-tree")), ready after $((EPOCHSECONDS - t0)) s"
echo "PASS: systemd.tree"
