# bash completion for rgtfs, rgtfs-store, rgtfs-verify, rgtfs-teardown and
# rgtfs-top.
#
# One file for all five; it is installed once per command name, because
# bash-completion loads completions on demand by the command's name. It uses
# nothing of bash-completion itself, so it also works when sourced alone:
#     source tools/completion/rgtfs.bash

# The words of the line up to the cursor, split at blanks only: bash splits
# COMP_WORDS at COMP_WORDBREAKS too (so "-o config=x" arrives as "config",
# "=", "x"). Sets words[], cword, cur and prev. Quotes are not parsed.
_rgtfs_init()
{
	local line=${COMP_LINE:0:COMP_POINT}
	local IFS=$' \t\n'
	read -r -a words <<<"$line"
	[[ -z $line || $line == *[[:blank:]] ]] && words+=("")
	cword=$((${#words[@]} - 1))
	cur=${words[cword]}
	prev=
	((cword > 0)) && prev=${words[cword - 1]}
	COMPREPLY=()
}

# The replies hold whole words; bash replaces only the part of the word
# after its last COMP_WORDBREAKS character: cut that prefix off.
_rgtfs_trim()
{
	local i n=0 wb=${COMP_WORDBREAKS-$' \t\n"\'><=;|&(:'}
	for ((i = ${#cur} - 1; i >= 0; i--)); do
		if [[ $wb == *"${cur:i:1}"* ]]; then
			n=$((i + 1))
			break
		fi
	done
	((n)) || return 0
	for i in "${!COMPREPLY[@]}"; do
		COMPREPLY[i]=${COMPREPLY[i]:n}
	done
}

# COMPREPLY from the words of $1 that start with $2.
_rgtfs_words()
{
	local IFS=$' \t\n'
	COMPREPLY=($(compgen -W "$1" -- "$2"))
}

# COMPREPLY from files (or directories, with $1 = -d) matching $2; one
# name per line, so spaces in names survive.
_rgtfs_paths()
{
	local IFS=$'\n'
	COMPREPLY=($(compgen "${1:--f}" -- "$2"))
	compopt -o filenames 2>/dev/null
}

# COMPREPLY from the lines of stdin that start with $1. Not compgen -W:
# it runs $(...) and `...` found in its word list, and these words (mount
# points, instance ids) are chosen by others (any local user can mount at
# '/tmp/a$(touch /tmp/x)').
_rgtfs_match()
{
	local w
	COMPREPLY=()
	while IFS= read -r w; do
		[[ -n $w && $w == "$1"* ]] && COMPREPLY+=("$w")
	done
}

# Mount points of rgtfs mounts (type fuse.rgtfs), from /proc/self/mounts
# (or $_RGTFS_MOUNTS_FILE, for the tests). Its own IFS: a caller's
# IFS=$'\n' would leave each whole line in $src and no mount found.
_rgtfs_mounts()
{
	local src mp type rest IFS=$' \t'
	local f=${_RGTFS_MOUNTS_FILE:-/proc/self/mounts}
	[[ -r $f ]] || return 0
	while read -r src mp type rest; do
		# the kernel writes ' ', '\t', '\n' and '\\' as \NNN
		[[ $type == fuse.rgtfs ]] && printf '%b\n' "$mp"
	done <"$f"
	return 0
}

# The cache directory rgtfs-store would open: -c DIR on the line, else
# rgtfs's default.
_rgtfs_store_cache()
{
	local i
	for ((i = 1; i < cword; i++)); do
		if [[ ${words[i]} == -c ]]; then
			printf '%s\n' "${words[i + 1]/#\~/$HOME}"
			return
		fi
	done
	if [[ $XDG_CACHE_HOME == /* ]]; then
		printf '%s\n' "$XDG_CACHE_HOME/rgtfs"
	else
		printf '%s\n' "${HOME:-/}/.cache/rgtfs"
	fi
}

# PLATFORM/ID of the instances the cache knows. Cheap: one read of the
# local LMDB, never the network; skipped when the cache does not exist (so
# a TAB never creates one), bounded by timeout(1) where it exists.
_rgtfs_store_instances()
{
	local dir cmd=${words[0]}
	dir=$(_rgtfs_store_cache)
	[[ -f $dir/data.mdb ]] || return 0
	type -P timeout >/dev/null && set -- timeout 2 || set --
	"$@" "$cmd" -c "$dir" instances 2>/dev/null | cut -f1
}

_rgtfs_do_rgtfs()
{
	if [[ $prev == -o ]]; then
		# -o a,b,c: complete the last item of the list
		local head=${cur%,*} item=${cur##*,}
		[[ $head == "$cur" ]] && head= || head+=,
		case $item in
		config=*)
			local IFS=$'\n'
			COMPREPLY=($(compgen -f -- "${item#config=}"))
			COMPREPLY=("${COMPREPLY[@]/#/$head"config="}")
			compopt -o filenames -o nospace 2>/dev/null
			return
			;;
		cache=*)
			local IFS=$'\n'
			COMPREPLY=($(compgen -d -- "${item#cache=}"))
			COMPREPLY=("${COMPREPLY[@]/#/$head"cache="}")
			compopt -o filenames -o nospace 2>/dev/null
			return
			;;
		cache_size=*)
			_rgtfs_words "512M 1G 5G 20G 100G" "${item#cache_size=}"
			COMPREPLY=("${COMPREPLY[@]/#/$head"cache_size="}")
			return
			;;
		esac
		local opts="config= cache= cache_size= allow_other allow_root
			auto_unmount ro max_threads= max_idle_threads= clone_fd
			noatime"
		_rgtfs_words "$opts" "$item"
		COMPREPLY=("${COMPREPLY[@]/#/$head}")
		# an option that takes a value: no space after the '='
		[[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]] &&
			compopt -o nospace 2>/dev/null
		return
	fi
	if [[ $cur == -* ]]; then
		_rgtfs_words "-o -f -d -s -h --help -V --version" "$cur"
		return
	fi
	_rgtfs_paths -d "$cur"
}

_rgtfs_do_store()
{
	local cmds="stat instances hostkeys forget-hostkey ls export verify"
	local i cmd= ncmd=0

	if [[ $prev == -c ]]; then
		_rgtfs_paths -d "$cur"
		return
	fi
	# the subcommand and how many words follow it
	for ((i = 1; i < cword; i++)); do
		if [[ ${words[i]} == -c ]]; then
			((i++))
		elif [[ -z $cmd && ${words[i]} != -* ]]; then
			cmd=${words[i]}
		elif [[ -n $cmd ]]; then
			((ncmd++))
		fi
	done
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			_rgtfs_words "-c -h" "$cur"
		else
			_rgtfs_words "$cmds" "$cur"
		fi
		return
	fi
	case $cmd:$ncmd in
	forget-hostkey:0 | export:0 | verify:0)
		_rgtfs_match "$cur" < <(_rgtfs_store_instances)
		;;
	export:1)
		_rgtfs_paths -d "$cur"
		;;
	esac
}

_rgtfs_do_verify()
{
	_rgtfs_paths -f "$cur"
}

_rgtfs_do_teardown()
{
	if [[ $cur == -* ]]; then
		_rgtfs_words "-h --help" "$cur"
		return
	fi
	# MOUNT/PLATFORM/ID: directories; listing one is local (no network)
	_rgtfs_paths -d "$cur"
}

_rgtfs_do_top()
{
	case $prev in
	-n | --read-timeout)
		_rgtfs_words "1 2 5 10 30" "$cur"
		return
		;;
	--sort)
		_rgtfs_words "platform status cost uptime gpu" "$cur"
		return
		;;
	esac
	if [[ $cur == -* ]]; then
		_rgtfs_words "-n -1 --sort --read-timeout -h --help" "$cur"
		return
	fi
	# the rgtfs mounts first (quoted by bash as file names); any
	# directory otherwise
	_rgtfs_match "$cur" < <(_rgtfs_mounts)
	if ((${#COMPREPLY[@]})); then
		compopt -o filenames 2>/dev/null
	else
		_rgtfs_paths -d "$cur"
	fi
}

# One entry point per command: the line parsed, the command's completer,
# the replies cut to what bash replaces.
_rgtfs_complete()
{
	local words cword cur prev
	_rgtfs_init
	"$1"
	_rgtfs_trim
}
_rgtfs() { _rgtfs_complete _rgtfs_do_rgtfs; }
_rgtfs_store() { _rgtfs_complete _rgtfs_do_store; }
_rgtfs_verify() { _rgtfs_complete _rgtfs_do_verify; }
_rgtfs_teardown() { _rgtfs_complete _rgtfs_do_teardown; }
_rgtfs_top() { _rgtfs_complete _rgtfs_do_top; }

complete -F _rgtfs rgtfs
complete -F _rgtfs_store rgtfs-store
complete -F _rgtfs_verify rgtfs-verify
complete -F _rgtfs_teardown rgtfs-teardown
complete -F _rgtfs_top rgtfs-top
