<?php
// Loads examples/whmcs/modules/servers/hcc/hcc.php as WHMCS does (WHMCS
// defined, the module's functions called with WHMCS's documented $params)
// and calls one function. Nothing hcc-related is stubbed: the module talks
// to a real `hcc serve` over HTTP. What WHMCS itself provides is recorded:
// logModuleCall (to check what reaches WHMCS's module log), localAPI
// (what the module asks WHMCS to store) and WHMCS\Database\Capsule's
// tblhosting (the rows UsageUpdate reads and writes), from the request.
//
//   php tests/whmcs/harness.php < request.json
//
// The request: {"function": "CreateAccount", "params": {...}, "post": {...},
// "session": DIR (a PHP session kept there across calls), "tblhosting":
// [rows]}. Prints one JSON object: result, threw (an exception that escaped
// the module, or null), warnings (PHP notices and warnings), log
// (logModuleCall's calls), localapi (localAPI's calls), tblhosting (the
// rows afterwards).

namespace WHMCS\Database {
    class Capsule
    {
        public static array $tables = [];

        public static function table(string $name): Query
        {
            return new Query($name);
        }
    }

    class Query
    {
        private array $where = [];

        public function __construct(private string $table)
        {
        }

        public function where(string $column, $op, $value = null): Query
        {
            $this->where[] = [$column, func_num_args() === 2 ? $op : $value];
            return $this;
        }

        private function matches(array $row): bool
        {
            foreach ($this->where as [$column, $value]) {
                if ((string) ($row[$column] ?? '') !== (string) $value) {
                    return false;
                }
            }
            return true;
        }

        public function get(): array
        {
            return array_map(fn ($r) => (object) $r, array_values(array_filter(Capsule::$tables[$this->table] ?? [], fn ($r) => $this->matches($r))));
        }

        public function update(array $values): int
        {
            $n = 0;
            foreach (Capsule::$tables[$this->table] ?? [] as $i => $row) {
                if ($this->matches($row)) {
                    Capsule::$tables[$this->table][$i] = array_merge($row, $values);
                    $n++;
                }
            }
            return $n;
        }
    }
}

namespace {
    define('WHMCS', true);

    $request = json_decode(stream_get_contents(STDIN), true);
    if (!is_array($request)) {
        fwrite(STDERR, "harness: no JSON request on stdin\n");
        exit(2);
    }
    $out = ['result' => null, 'threw' => null, 'warnings' => [], 'log' => [], 'localapi' => [], 'tblhosting' => null];

    set_error_handler(function ($level, $message, $file, $line) use (&$out) {
        $out['warnings'][] = "$message at " . basename($file) . ":$line";
        return true;
    });

    function logModuleCall($module, $action, $request, $response, $processed, $replace)
    {
        $GLOBALS['harness_log'][] = compact('module', 'action', 'request', 'response', 'processed', 'replace');
    }

    function localAPI($command, $values, $admin = null)
    {
        $GLOBALS['harness_localapi'][] = ['command' => $command, 'values' => $values];
        return ['result' => 'success'];
    }

    if (isset($request['session'])) {
        ini_set('session.use_cookies', '0');
        ini_set('session.use_only_cookies', '0');
        ini_set('session.cache_limiter', '');
        session_save_path($request['session']);
        session_id('harness');
        session_start();
    }
    if (isset($request['tblhosting'])) {
        \WHMCS\Database\Capsule::$tables['tblhosting'] = $request['tblhosting'];
    }
    $_POST = $request['post'] ?? [];
    $_REQUEST = $_POST;

    require dirname(__DIR__, 2) . '/examples/whmcs/modules/servers/hcc/hcc.php';

    $function = 'hcc_' . $request['function'];
    try {
        if (!function_exists($function)) {
            throw new RuntimeException("the module has no $function");
        }
        $out['result'] = $request['function'] === 'MetaData' ? $function() : $function($request['params'] ?? []);
    } catch (\Throwable $e) {
        $out['threw'] = get_class($e) . ': ' . $e->getMessage();
    }
    $out['log'] = $GLOBALS['harness_log'] ?? [];
    $out['localapi'] = $GLOBALS['harness_localapi'] ?? [];
    if (isset($request['tblhosting'])) {
        $out['tblhosting'] = \WHMCS\Database\Capsule::$tables['tblhosting'];
    }
    if (session_status() === PHP_SESSION_ACTIVE) {
        session_write_close();
    }
    echo json_encode($out), "\n";
}
