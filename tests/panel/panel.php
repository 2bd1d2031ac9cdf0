<?php
// A hosting panel's side of hcc, in plain php-cli (PDO SQLite, PHP 8.1+).
//
// It does what a panel's web service does: asks for a console by dropping a
// spool file, asks for another command by inserting a row into `commands`,
// then waits for the answers by reading hcc.db. It never talks to Hetzner
// and never sees the token: `hcc worker` does the work.
//
//   php panel.php [--console NAME] [--command 'stop NAME'] [--timeout SECS] [HOME]
//
// HOME is the state directory (default: $HCC_HOME). Prints one JSON object
// per line; exits 0 when both requests are done, 1 on timeout, 2 on bad
// usage or a database error, 3 when hcc answered the command `failed`.

set_exception_handler(function (Throwable $e) {
    fwrite(STDERR, 'panel: ' . $e->getMessage() . "\n");
    exit(2);
});

$opts = getopt('', ['console:', 'command:', 'timeout:'], $rest);
$home = $argv[$rest] ?? getenv('HCC_HOME');
$console = $opts['console'] ?? 'srv-00001';
[$cmd, $arg] = explode(' ', ($opts['command'] ?? 'stop srv-00002') . ' ', 2);
$deadline = microtime(true) + (float)($opts['timeout'] ?? 30);
if (!$home || !is_file("$home/hcc.db")) {
    fwrite(STDERR, "panel: no hcc.db in the state directory (give HOME or set HCC_HOME)\n");
    exit(2);
}

function say(array $what): void {
    echo json_encode($what, JSON_UNESCAPED_SLASHES), "\n";
}

// One row of a query. closeCursor() matters: a statement left unfinished
// keeps its read transaction open, so later reads on this connection see
// the old snapshot (the row never changes) and a later INSERT fails at
// once with "database is locked", whatever the busy timeout.
function one(PDOStatement $query, array $args): ?array {
    $query->execute($args);
    $row = $query->fetch();
    $query->closeCursor();
    return $row ?: null;
}

// Open the database read-write but never create it: a mistyped path would
// otherwise give an empty hcc.db that hcc knows nothing about.
$db = new PDO("sqlite:$home/hcc.db", null, null, [
    PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
    PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
    PDO::ATTR_TIMEOUT => 5,  // busy timeout: wait for hcc's short writes
    PDO::SQLITE_ATTR_OPEN_FLAGS => PDO::SQLITE_OPEN_READWRITE,
]);

// The console row as it is now (the `vms` view keeps the original's names:
// url, auth, ts). A new console is one whose ts is later than this.
$vms = $db->prepare('SELECT url, auth, ts FROM vms WHERE name = ?');
$before = (float)(one($vms, [$console])['ts'] ?? 0);

// (a) Queue `console NAME` the maildir way: write in spool/tmp, flush to
// disk, rename into spool/new. The rename is atomic: hcc never sees half a
// file. The name must be unique for ever: time, microseconds, pid, host.
$name = sprintf('%d.M%06dP%d.%s', time(), intdiv(hrtime(true), 1000) % 1000000,
                getmypid(), gethostname());
$fh = fopen("$home/spool/tmp/$name", 'x');   // x: fail rather than overwrite
fwrite($fh, "console $console\n");
fflush($fh);
fsync($fh);                                  // PHP 8.1+
fclose($fh);
rename("$home/spool/tmp/$name", "$home/spool/new/$name");
say(['spooled' => $name, 'line' => "console $console"]);

// (b) Queue another command with SQL. The defaults fill in state 'queued',
// source 'sql' and created_at; lastInsertId is the id to follow.
$db->prepare('INSERT INTO commands (cmd, arg) VALUES (?, ?)')
   ->execute([$cmd, trim($arg)]);
$id = (int)$db->lastInsertId();
say(['inserted' => $id, 'cmd' => $cmd, 'arg' => trim($arg)]);

// (c) Poll until both are answered. Reads are cheap and never block hcc;
// a real web page would poll from the browser instead of looping here.
$state = $db->prepare('SELECT state, result, error FROM commands WHERE id = ?');
$vm = null;
$done = null;
while (microtime(true) < $deadline) {
    if ($vm === null) {
        $r = one($vms, [$console]);
        if ($r && $r['url'] !== null && (float)$r['ts'] > $before) {
            $vm = $r;  // fresh credentials: valid for one minute from ts
        }
    }
    if ($done === null) {
        $r = one($state, [$id]);
        if ($r && in_array($r['state'], ['done', 'failed'], true)) {
            $done = $r;
        }
    }
    if ($vm !== null && $done !== null) {
        break;
    }
    usleep(50_000);
}

// (d) The outcome, one JSON line each, for a machine to check.
if ($vm !== null) {
    say(['console' => $console, 'console_url' => $vm['url'],
         'console_password' => $vm['auth'], 'console_at' => (float)$vm['ts']]);
}
if ($done !== null) {
    say(['command_id' => $id, 'command_state' => $done['state'],
         'result' => json_decode($done['result'] ?? 'null'), 'error' => $done['error']]);
}
if ($vm === null || $done === null) {
    say(['timeout' => array_keys(array_filter(['console' => $vm === null,
                                                'command' => $done === null]))]);
    exit(1);
}
exit($done['state'] === 'done' ? 0 : 3);
