<?php
/**
 * hcc: Hetzner Cloud servers for WHMCS, through hcc.
 *
 * A WHMCS provisioning module (modules/servers/hcc/). It holds only an hcc
 * API key (the WHMCS server's Access Hash or Password) and talks only to
 * `hcc serve`'s JSON API; hcc keeps the Hetzner token, queues every action
 * for its worker, rations requests to Hetzner and brokers the consoles.
 * Reads (a server's state, addresses, traffic) come from hcc's own table,
 * never from Hetzner, so a client-area page view costs Hetzner nothing.
 *
 * Needs PHP 8.1+ and ext-curl; no WHMCS database access except in
 * hcc_UsageUpdate, which WHMCS documents as writing tblhosting itself (and
 * which does nothing where WHMCS\Database\Capsule is absent).
 *
 * Every function returns WHMCS's documented shapes and never throws.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

const HCC_MODULE = 'hcc';
/** How long a function waits for hcc's worker to finish a command. */
const HCC_WAIT_SECONDS = 55;
/** How long a client-area button waits before saying "queued". */
const HCC_BUTTON_WAIT_SECONDS = 15;
/** The session key of a root password shown once on the next page. */
const HCC_SHOWN_ONCE = 'hcc_root_password';

// --- Meta data and settings ----------------------------------------------

function hcc_MetaData()
{
    return [
        'DisplayName' => 'Hetzner Cloud (hcc)',
        'APIVersion' => '1.1',
        'RequiresServer' => true,
        'DefaultNonSSLPort' => '8479',
        'DefaultSSLPort' => '443',
        'ServiceSingleSignOnLabel' => hcc_t('sso_client'),
        'AdminSingleSignOnLabel' => hcc_t('sso_admin'),
    ];
}

/**
 * configoption1 server type, configoption2 image, configoption3 location:
 * pick lists from hcc's catalog when hcc answers, text fields otherwise.
 * configoption4: keep the disk's size on a package change (so that the
 * server can be made smaller again later).
 */
function hcc_ConfigOptions($params = [])
{
    $catalog = null;
    try {
        if (is_array($params) && hcc_key($params) !== '') {
            $answer = hcc_api($params, 'GET', '/catalog', null, 8);
            if ($answer['ok']) {
                $catalog = $answer['data'];
            }
        }
    } catch (\Throwable $e) {
        $catalog = null;
    }
    $field = function (string $label, string $what, string $default, string $help) use ($catalog) {
        $option = ['FriendlyName' => $label, 'Description' => $help, 'Default' => $default];
        $choices = [];
        foreach (($catalog[$what] ?? []) as $entry) {
            if (!empty($entry['deprecated'])) {
                continue;
            }
            $name = (string) ($entry['name'] ?? '');
            if ($name !== '') {
                $choices[$name] = $name . (isset($entry['description']) ? ' (' . $entry['description'] . ')' : '');
            }
        }
        if ($choices) {
            $option['Type'] = 'dropdown';
            $option['Options'] = $choices;
        } else {
            $option['Type'] = 'text';
            $option['Size'] = '25';
        }
        return $option;
    };
    $defaults = $catalog['defaults'] ?? [];
    return [
        'server_type' => $field('Server type', 'server_types', (string) ($defaults['server_type'] ?? 'cx22'), 'Hetzner server type, e.g. cx22'),
        'image' => $field('Image', 'images', (string) ($defaults['image'] ?? 'debian-12'), 'The system installed, e.g. debian-12'),
        'location' => $field('Location', 'locations', (string) ($defaults['location'] ?? 'fsn1'), 'Hetzner location, e.g. fsn1'),
        'keep_disk' => [
            'FriendlyName' => 'Keep disk on package change',
            'Type' => 'yesno',
            'Description' => 'Tick to keep the disk size when the type changes (the server can then be made smaller again)',
        ],
    ];
}

/** Whether the key works, and what it may do. */
function hcc_TestConnection($params)
{
    try {
        if (hcc_key($params) === '') {
            return ['success' => false, 'error' => hcc_t('no_key')];
        }
        $answer = hcc_api($params, 'GET', '/status', null, 10);
        if (!$answer['ok']) {
            return ['success' => false, 'error' => $answer['error']];
        }
        $scope = (string) ($answer['data']['key']['scope'] ?? '');
        $name = (string) ($answer['data']['key']['name'] ?? '');
        $worker = !empty($answer['data']['worker']['pid']);
        if ($scope !== 'admin') {
            return ['success' => false, 'error' => sprintf(hcc_t('scope_too_small'), $name, $scope)];
        }
        if (!$worker) {
            return ['success' => false, 'error' => sprintf(hcc_t('no_worker'), $name)];
        }
        return ['success' => true, 'error' => ''];
    } catch (\Throwable $e) {
        return ['success' => false, 'error' => hcc_failure($e)];
    }
}

// --- The life of a service -----------------------------------------------

function hcc_CreateAccount($params)
{
    return hcc_guard($params, 'CreateAccount', function () use ($params) {
        $name = hcc_server_name($params);
        if ($name === null) {
            return hcc_last_error();
        }
        $body = [];
        foreach (['server_type', 'image', 'location'] as $field) {
            $value = hcc_option($params, $field);
            if ($value !== '') {
                $body[$field] = $value;
            }
        }
        $queued = hcc_api($params, 'POST', '/servers/' . rawurlencode($name) . '/actions/create', $body ?: new \stdClass());
        if (!$queued['ok']) {
            return $queued['error'];
        }
        $command = hcc_wait($params, $queued['data']['command'] ?? [], HCC_WAIT_SECONDS);
        $state = $command['state'] ?? '';
        if ($state === 'failed') {
            return sprintf(hcc_t('command_failed'), 'create', $command['error'] ?? '?');
        }
        if ($state === 'queued') {
            return sprintf(hcc_t('not_taken'), (int) ($command['id'] ?? 0), HCC_WAIT_SECONDS);
        }
        // Done (or running: Hetzner is still building it; hcc finishes it).
        $update = ['serviceid' => (int) ($params['serviceid'] ?? 0), 'domain' => $name];
        $password = $command['result']['root_password'] ?? null;
        if (is_string($password) && $password !== '') {
            $update['servicepassword'] = $password;
        }
        $server = hcc_api($params, 'GET', '/servers/' . rawurlencode($name));
        if ($server['ok']) {
            $ip4 = (string) ($server['data']['server']['ip4'] ?? '');
            $ip6 = (string) ($server['data']['server']['ip6'] ?? '');
            if ($ip4 !== '') {
                $update['dedicatedip'] = $ip4;
            }
            if ($ip6 !== '') {
                $update['assignedips'] = $ip6;
            }
        }
        hcc_local_api('UpdateClientProduct', $update);
        return 'success';
    });
}

/** Suspends the consoles (live ones end), then powers off: ACPI, then hard. */
function hcc_SuspendAccount($params)
{
    return hcc_guard($params, 'SuspendAccount', function () use ($params) {
        $name = hcc_server_name($params);
        if ($name === null) {
            return hcc_last_error();
        }
        $path = '/servers/' . rawurlencode($name);
        $suspended = hcc_api($params, 'POST', $path . '/suspend', new \stdClass());
        if (!$suspended['ok']) {
            return $suspended['error'];
        }
        $status = hcc_server_status($params, $name);
        if ($status === 'off') {
            return 'success';
        }
        $stop = hcc_act($params, $name, 'stop', null, HCC_WAIT_SECONDS);
        if ($stop !== 'success' || hcc_server_status($params, $name) !== 'off') {
            $force = hcc_act($params, $name, 'force', null, HCC_WAIT_SECONDS);
            if ($force !== 'success') {
                return $force;
            }
        }
        return 'success';
    });
}

function hcc_UnsuspendAccount($params)
{
    return hcc_guard($params, 'UnsuspendAccount', function () use ($params) {
        $name = hcc_server_name($params);
        if ($name === null) {
            return hcc_last_error();
        }
        $resumed = hcc_api($params, 'POST', '/servers/' . rawurlencode($name) . '/resume', new \stdClass());
        if (!$resumed['ok']) {
            return $resumed['error'];
        }
        if (hcc_server_status($params, $name) === 'running') {
            return 'success';
        }
        return hcc_act($params, $name, 'start', null, HCC_WAIT_SECONDS);
    });
}

/** Deletes the server; its consoles end before Hetzner is asked. */
function hcc_TerminateAccount($params)
{
    return hcc_guard($params, 'TerminateAccount', function () use ($params) {
        $name = hcc_server_name($params);
        if ($name === null) {
            return hcc_last_error();
        }
        $known = hcc_api($params, 'GET', '/servers/' . rawurlencode($name));
        if (!$known['ok'] && $known['code'] === 'not_found') {
            return 'success'; // Nothing left to delete.
        }
        return hcc_act($params, $name, 'kill', null, HCC_WAIT_SECONDS);
    });
}

/** The product's new server type (configoption1), kept disk per configoption4. */
function hcc_ChangePackage($params)
{
    return hcc_guard($params, 'ChangePackage', function () use ($params) {
        $name = hcc_server_name($params);
        if ($name === null) {
            return hcc_last_error();
        }
        $type = hcc_option($params, 'server_type');
        if ($type === '') {
            return hcc_t('no_type');
        }
        $server = hcc_api($params, 'GET', '/servers/' . rawurlencode($name));
        if (!$server['ok']) {
            return $server['error'];
        }
        if (($server['data']['server']['server_type'] ?? '') === $type) {
            return 'success';
        }
        $keep = in_array(strtolower((string) ($params['configoption4'] ?? '')), ['on', 'yes', '1', 'true'], true);
        return hcc_act($params, $name, 'change-type', ['server_type' => $type, 'keep_disk' => $keep], HCC_WAIT_SECONDS);
    });
}

/** Nothing to do: Hetzner bills by the hour, hcc keeps the server. */
function hcc_Renew($params)
{
    return 'success';
}

/**
 * Hetzner cannot set a chosen root password, so a password typed into
 * WHMCS cannot be applied: this says so. "Reset root password" (client
 * area and admin buttons) has Hetzner make a new one and stores it as the
 * service's password.
 */
function hcc_ChangePassword($params)
{
    return hcc_t('no_chosen_password');
}

// --- Single sign-on: a one-time console link ------------------------------

function hcc_ServiceSingleSignOn($params)
{
    return hcc_sso($params, 'ServiceSingleSignOn');
}

function hcc_AdminSingleSignOn($params)
{
    return hcc_sso($params, 'AdminSingleSignOn');
}

function hcc_sso($params, string $action)
{
    try {
        hcc_begin($params, $action);
        $name = hcc_server_name($params);
        if ($name === null) {
            return ['success' => false, 'errorMsg' => hcc_last_error()];
        }
        $link = hcc_api($params, 'POST', '/servers/' . rawurlencode($name) . '/console-link', new \stdClass());
        if (!$link['ok'] || !isset($link['data']['url'])) {
            return ['success' => false, 'errorMsg' => $link['error'] ?: hcc_t('no_link')];
        }
        return ['success' => true, 'redirectTo' => (string) $link['data']['url']];
    } catch (\Throwable $e) {
        return ['success' => false, 'errorMsg' => hcc_failure($e)];
    }
}

// --- Client area ---------------------------------------------------------

/**
 * The service's overview: status, addresses, traffic, graphs (24 hours,
 * one hcc request whose answer hcc caches for 5 minutes) and the buttons.
 * Everything here is read from hcc's own table (no Hetzner request) except
 * the graphs and the image list, which hcc caches.
 */
function hcc_ClientArea($params)
{
    try {
        hcc_begin($params, 'ClientArea');
        $lang = hcc_lang($params);
        $vars = ['lang' => $lang, 'serviceid' => (int) ($params['serviceid'] ?? 0), 'error' => '', 'server' => null];
        $vars['shown_password'] = hcc_take_shown_password((int) ($params['serviceid'] ?? 0));
        $name = hcc_server_name($params);
        if ($name === null) {
            $vars['error'] = hcc_last_error();
            return hcc_overview($vars);
        }
        $vars['name'] = $name;
        $answer = hcc_api($params, 'GET', '/servers/' . rawurlencode($name));
        if (!$answer['ok']) {
            $vars['error'] = $answer['error'];
            return hcc_overview($vars);
        }
        $server = $answer['data']['server'] ?? [];
        $detail = $answer['data']['detail'] ?? [];
        $traffic = $detail['traffic'] ?? [];
        $vars['server'] = [
            'name' => (string) ($server['name'] ?? $name),
            'status' => (string) ($server['status'] ?? 'unknown'),
            'server_type' => (string) ($server['server_type'] ?? ''),
            'image' => (string) ($detail['image']['description'] ?? ($server['image'] ?? '')),
            'location' => (string) ($server['location'] ?? ''),
            'ip4' => (string) ($server['ip4'] ?? ''),
            'ip6' => (string) ($server['ip6'] ?? ''),
            'rescue' => !empty($detail['rescue_enabled']),
            'addresses' => array_map(fn ($a) => [
                'ip' => (string) ($a['ip'] ?? ''),
                'dns_ptr' => (string) ($a['dns_ptr'] ?? ''),
            ], $detail['addresses'] ?? []),
            'traffic' => sprintf(
                $lang['traffic_words'],
                hcc_bytes((float) ($traffic['outgoing'] ?? 0)),
                hcc_bytes((float) ($traffic['ingoing'] ?? 0)),
                hcc_bytes((float) ($traffic['included'] ?? 0))
            ),
            'running' => ($server['status'] ?? '') === 'running',
            'off' => ($server['status'] ?? '') === 'off',
        ];
        $vars['images'] = [];
        $catalog = hcc_api($params, 'GET', '/catalog');
        if ($catalog['ok']) {
            foreach ($catalog['data']['images'] ?? [] as $image) {
                $vars['images'][] = ['name' => (string) $image['name'], 'description' => (string) ($image['description'] ?? $image['name'])];
            }
        }
        $vars['graphs'] = [];
        $metrics = hcc_api($params, 'GET', '/servers/' . rawurlencode($name) . '/metrics?type=cpu,network&since=24h');
        if ($metrics['ok']) {
            $series = $metrics['data']['metrics']['time_series'] ?? [];
            foreach ([
                'cpu' => [$lang['graph_cpu'], ['cpu']],
                'network' => [$lang['graph_network'], ['network.0.bandwidth.in', 'network.0.bandwidth.out']],
            ] as $id => [$title, $names]) {
                $lines = [];
                foreach ($names as $series_name) {
                    $values = $series[$series_name]['values'] ?? [];
                    if ($values) {
                        $lines[] = ['name' => $series_name, 'points' => hcc_polyline($values, 300, 60)];
                    }
                }
                $vars['graphs'][] = ['id' => $id, 'title' => $title, 'lines' => $lines];
            }
        }
        return hcc_overview($vars);
    } catch (\Throwable $e) {
        return hcc_overview(['lang' => hcc_lang($params), 'error' => hcc_failure($e), 'server' => null, 'serviceid' => 0, 'shown_password' => '']);
    }
}

function hcc_overview(array $vars): array
{
    return ['tabOverviewReplacementTemplate' => 'templates/overview', 'templateVariables' => $vars];
}

/**
 * The client area's buttons. Each is `clientarea.php?action=productdetails
 * &id=ID&modop=custom&a=FUNCTION` (the template posts the forms that need
 * input there: `hcc_image` for rebuild, `hcc_ip` and `hcc_hostname` for
 * reverse DNS). The console is WHMCS's single sign-on (`dosinglesignon=1`).
 */
function hcc_ClientAreaCustomButtonArray($params = [])
{
    return [
        hcc_t('start') => 'start',
        hcc_t('stop') => 'stop',
        hcc_t('poweroff') => 'poweroff',
        hcc_t('reboot') => 'reboot',
        hcc_t('reset') => 'reset',
        hcc_t('rebuild') => 'rebuild',
        hcc_t('reset_password') => 'resetpassword',
        hcc_t('rescue_on') => 'rescueon',
        hcc_t('rescue_off') => 'rescueoff',
        hcc_t('rdns') => 'rdns',
    ];
}

function hcc_ClientAreaAllowedFunctions($params = [])
{
    return array_values(hcc_ClientAreaCustomButtonArray($params));
}

function hcc_AdminCustomButtonArray($params = [])
{
    return [
        hcc_t('start') => 'start',
        hcc_t('stop') => 'stop',
        hcc_t('poweroff') => 'poweroff',
        hcc_t('reboot') => 'reboot',
        hcc_t('reset') => 'reset',
        hcc_t('reset_password') => 'resetpassword',
        hcc_t('revoke') => 'revokeconsoles',
    ];
}

function hcc_start($params)
{
    return hcc_button($params, 'start');
}

function hcc_stop($params)
{
    return hcc_button($params, 'stop');
}

function hcc_poweroff($params)
{
    return hcc_button($params, 'force');
}

function hcc_reboot($params)
{
    return hcc_button($params, 'reboot');
}

function hcc_reset($params)
{
    return hcc_button($params, 'reset');
}

function hcc_rescueoff($params)
{
    return hcc_button($params, 'disable-rescue');
}

function hcc_rescueon($params)
{
    return hcc_button($params, 'enable-rescue', ['type' => 'linux64'], true);
}

function hcc_resetpassword($params)
{
    return hcc_button($params, 'reset-password', null, true);
}

/** Reinstalls with the image posted as `hcc_image` (one of the catalog's). */
function hcc_rebuild($params)
{
    $image = trim((string) ($_POST['hcc_image'] ?? ($_REQUEST['hcc_image'] ?? '')));
    if ($image === '') {
        return hcc_t('pick_image');
    }
    return hcc_button($params, 'rebuild', ['image' => $image], true);
}

/** Sets the reverse DNS of `hcc_ip` (one of the server's) to `hcc_hostname`. */
function hcc_rdns($params)
{
    $ip = trim((string) ($_POST['hcc_ip'] ?? ($_REQUEST['hcc_ip'] ?? '')));
    $hostname = trim((string) ($_POST['hcc_hostname'] ?? ($_REQUEST['hcc_hostname'] ?? '')));
    if ($ip === '' || $hostname === '') {
        return hcc_t('rdns_fields');
    }
    return hcc_button($params, 'set-rdns', ['ip' => $ip, 'hostname' => $hostname]);
}

/** Admin: ends the server's console links and sessions now. */
function hcc_revokeconsoles($params)
{
    return hcc_guard($params, 'revokeconsoles', function () use ($params) {
        $name = hcc_server_name($params);
        if ($name === null) {
            return hcc_last_error();
        }
        $revoked = hcc_api($params, 'POST', '/servers/' . rawurlencode($name) . '/revoke', new \stdClass());
        return $revoked['ok'] ? 'success' : $revoked['error'];
    });
}

/**
 * One button: queues `verb` and waits a little; a new root password (reset,
 * rebuild, rescue) is stored as the service's password and shown once on
 * the next page.
 */
function hcc_button($params, string $verb, ?array $body = null, bool $password = false)
{
    return hcc_guard($params, $verb, function () use ($params, $verb, $body, $password) {
        $name = hcc_server_name($params);
        if ($name === null) {
            return hcc_last_error();
        }
        $wait = $password ? HCC_WAIT_SECONDS : HCC_BUTTON_WAIT_SECONDS;
        $command = [];
        $outcome = hcc_act($params, $name, $verb, $body, $wait, $command);
        if ($outcome !== 'success') {
            return $outcome;
        }
        $root = $command['result']['root_password'] ?? null;
        if (is_string($root) && $root !== '') {
            $serviceid = (int) ($params['serviceid'] ?? 0);
            if ($verb !== 'enable-rescue') {
                hcc_local_api('UpdateClientProduct', ['serviceid' => $serviceid, 'servicepassword' => $root]);
            }
            hcc_show_once($serviceid, $root, $verb);
        }
        return 'success';
    });
}

/** The admin's service page: server id, status, live console sessions. */
function hcc_AdminServicesTabFields($params)
{
    try {
        hcc_begin($params, 'AdminServicesTabFields');
        $name = hcc_server_name($params);
        if ($name === null) {
            return [hcc_t('admin_server') => hcc_h(hcc_last_error())];
        }
        $answer = hcc_api($params, 'GET', '/servers/' . rawurlencode($name));
        if (!$answer['ok']) {
            return [hcc_t('admin_server') => hcc_h($name . ': ' . $answer['error'])];
        }
        $server = $answer['data']['server'] ?? [];
        $fields = [
            hcc_t('admin_server') => hcc_h($name) . ' (Hetzner id ' . (int) ($server['id'] ?? 0) . ')',
            hcc_t('admin_status') => hcc_h((string) ($server['status'] ?? '?')) . ', ' . hcc_h((string) ($server['server_type'] ?? '')) . ' in ' . hcc_h((string) ($server['location'] ?? '')),
        ];
        $sessions = hcc_api($params, 'GET', '/sessions?live=1');
        if ($sessions['ok']) {
            $mine = array_values(array_filter($sessions['data']['sessions'] ?? [], fn ($s) => ($s['server'] ?? '') === $name));
            $rows = array_map(fn ($s) => hcc_h(sprintf(
                '#%d from %s since %s',
                (int) ($s['id'] ?? 0),
                (string) ($s['remote'] ?? '?'),
                gmdate('Y-m-d H:i', (int) ($s['connected_at'] ?? $s['started_at'] ?? 0)) . ' UTC'
            )), $mine);
            $suspended = in_array($name, array_map(fn ($s) => is_array($s) ? ($s['server'] ?? '') : (string) $s, $sessions['data']['suspended'] ?? []), true);
            $fields[hcc_t('admin_consoles')] = ($rows ? implode('<br>', $rows) : hcc_h(hcc_t('admin_no_consoles')))
                . ($suspended ? '<br><strong>' . hcc_h(hcc_t('admin_suspended')) . '</strong>' : '');
        } else {
            $fields[hcc_t('admin_consoles')] = hcc_h($sessions['error']);
        }
        return $fields;
    } catch (\Throwable $e) {
        return [hcc_t('admin_server') => hcc_h(hcc_failure($e))];
    }
}

// --- Usage ---------------------------------------------------------------

/**
 * WHMCS's daily cron, once per server record: each service's traffic this
 * billing month at Hetzner (outgoing, what Hetzner bills) and the included
 * traffic, in MB, as WHMCS's bandwidth usage and limit. The numbers come
 * from hcc's table (its sync), not from Hetzner.
 */
function hcc_UsageUpdate($params)
{
    try {
        hcc_begin($params, 'UsageUpdate');
        $capsule = 'WHMCS\\Database\\Capsule';
        if (!class_exists($capsule)) {
            return 'success';
        }
        $services = $capsule::table('tblhosting')->where('server', (int) ($params['serverid'] ?? 0))->get();
        foreach ($services as $service) {
            $service = (array) $service;
            $status = (string) ($service['domainstatus'] ?? 'Active');
            if (!in_array($status, ['Active', 'Suspended'], true)) {
                continue;
            }
            $one = $params;
            $one['serviceid'] = (int) $service['id'];
            $one['domain'] = (string) ($service['domain'] ?? '');
            $name = hcc_server_name($one);
            if ($name === null) {
                continue;
            }
            $answer = hcc_api($params, 'GET', '/servers/' . rawurlencode($name));
            if (!$answer['ok']) {
                continue;
            }
            $traffic = $answer['data']['detail']['traffic'] ?? [];
            $capsule::table('tblhosting')->where('id', (int) $service['id'])->update([
                'bwusage' => round(((float) ($traffic['outgoing'] ?? 0)) / 1048576, 2),
                'bwlimit' => round(((float) ($traffic['included'] ?? 0)) / 1048576, 2),
                'lastupdate' => gmdate('Y-m-d H:i:s'),
            ]);
        }
        return 'success';
    } catch (\Throwable $e) {
        return hcc_failure($e);
    }
}

// --- Talking to hcc ------------------------------------------------------

/** The hcc API key: the server's Access Hash, else its Password. */
function hcc_key($params): string
{
    $hash = trim((string) ($params['serveraccesshash'] ?? ''));
    return $hash !== '' ? $hash : trim((string) ($params['serverpassword'] ?? ''));
}

/** `http(s)://host[:port]/api/v1` from the server's Hostname (or IP), port and SSL. */
function hcc_base($params): string
{
    $host = trim((string) ($params['serverhostname'] ?? ''));
    if ($host === '') {
        $host = trim((string) ($params['serverip'] ?? ''));
    }
    if (preg_match('#^https?://#i', $host)) {
        return rtrim($host, '/') . '/api/v1';
    }
    $secure = !empty($params['serversecure']) && $params['serversecure'] !== 'off';
    $scheme = $secure ? 'https' : 'http';
    $port = trim((string) ($params['serverport'] ?? ''));
    $host = rtrim($host, '/');
    if ($port !== '' && !preg_match('/:\d+$/', $host) && !(($secure && $port === '443') || (!$secure && $port === '80'))) {
        $host .= ':' . $port;
    }
    return $scheme . '://' . $host . '/api/v1';
}

/**
 * One request to hcc's API: ['ok', 'status', 'code', 'data', 'error'].
 * Logged with logModuleCall when WHMCS provides it, the key and any
 * password or link masked.
 */
function hcc_api($params, string $method, string $path, $body = null, int $timeout = 20): array
{
    $key = hcc_key($params);
    $url = hcc_base($params) . $path;
    $headers = ['Authorization: Bearer ' . $key, 'Accept: application/json', 'User-Agent: hcc-whmcs/1'];
    $payload = null;
    if ($body !== null) {
        $payload = json_encode($body);
        $headers[] = 'Content-Type: application/json';
    }
    $result = ['ok' => false, 'status' => 0, 'code' => '', 'data' => [], 'error' => ''];
    if (!function_exists('curl_init')) {
        $result['error'] = hcc_t('no_curl');
        return $result;
    }
    if (trim((string) ($params['serverhostname'] ?? '')) === '' && trim((string) ($params['serverip'] ?? '')) === '') {
        $result['error'] = hcc_t('no_host');
        return $result;
    }
    $ch = curl_init($url);
    curl_setopt_array($ch, [
        CURLOPT_CUSTOMREQUEST => $method,
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_CONNECTTIMEOUT => 5,
        CURLOPT_TIMEOUT => $timeout,
        CURLOPT_FOLLOWLOCATION => false,
    ]);
    if ($payload !== null) {
        curl_setopt($ch, CURLOPT_POSTFIELDS, $payload);
    }
    $raw = curl_exec($ch);
    $status = (int) curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    $curl_error = curl_error($ch);
    curl_close($ch);
    $result['status'] = $status;
    if ($raw === false) {
        $result['code'] = 'unreachable';
        $result['error'] = sprintf(hcc_t('unreachable'), preg_replace('#/api/v1$#', '', hcc_base($params)), $curl_error);
    } else {
        $data = json_decode((string) $raw, true);
        $result['data'] = is_array($data) ? $data : [];
        if ($status >= 200 && $status < 300 && is_array($data)) {
            $result['ok'] = true;
        } elseif (is_array($data) && isset($data['error']['message'])) {
            $result['code'] = (string) ($data['error']['code'] ?? '');
            $result['error'] = 'hcc: ' . $data['error']['message'];
        } else {
            $result['error'] = sprintf(hcc_t('bad_answer'), $status);
        }
    }
    hcc_log($params, $method . ' ' . $path, $payload ?? '', $raw === false ? $result['error'] : (string) $raw, $result['data']);
    return $result;
}

/**
 * Queues `verb` on `name` and follows the command up to `wait` seconds:
 * 'success' when done (or still running when no password is awaited),
 * else one line WHMCS can show. `$command` gets the last view.
 */
function hcc_act($params, string $name, string $verb, ?array $body, int $wait, array &$command = []): string
{
    $queued = hcc_api($params, 'POST', '/servers/' . rawurlencode($name) . '/actions/' . $verb, $body ?? new \stdClass());
    if (!$queued['ok']) {
        return $queued['error'];
    }
    $command = hcc_wait($params, $queued['data']['command'] ?? [], $wait);
    $state = $command['state'] ?? '';
    if ($state === 'failed') {
        return sprintf(hcc_t('command_failed'), $verb, $command['error'] ?? '?');
    }
    if ($state === 'queued') {
        return sprintf(hcc_t('not_taken'), (int) ($command['id'] ?? 0), $wait);
    }
    return 'success';
}

/** Follows a command until done or failed, or `seconds` pass. */
function hcc_wait($params, array $command, int $seconds): array
{
    $id = (int) ($command['id'] ?? 0);
    $until = microtime(true) + $seconds;
    $pause = 100000;
    while ($id > 0 && !in_array($command['state'] ?? '', ['done', 'failed'], true) && microtime(true) < $until) {
        usleep($pause);
        $pause = min($pause * 2, 1000000);
        $answer = hcc_api($params, 'GET', '/commands/' . $id);
        if ($answer['ok'] && isset($answer['data']['command'])) {
            $command = $answer['data']['command'];
        }
    }
    return $command;
}

function hcc_server_status($params, string $name): string
{
    $answer = hcc_api($params, 'GET', '/servers/' . rawurlencode($name));
    return $answer['ok'] ? (string) ($answer['data']['server']['status'] ?? '') : '';
}

/**
 * A setting of the service: the customer's configurable option of that
 * name (`server_type`, `image`, `location`, or `Server type`, `Image`,
 * `Location`) when the product has one, else the product's module setting.
 */
function hcc_option($params, string $field): string
{
    $labels = ['server_type' => 'server type', 'image' => 'image', 'location' => 'location'];
    $chosen = is_array($params['configoptions'] ?? null) ? $params['configoptions'] : [];
    foreach ($chosen as $name => $value) {
        $name = strtolower(trim((string) $name));
        if (($name === $field || $name === $labels[$field]) && is_scalar($value) && trim((string) $value) !== '') {
            return trim((string) $value);
        }
    }
    $option = ['server_type' => 'configoption1', 'image' => 'configoption2', 'location' => 'configoption3'][$field];
    return trim((string) ($params[$option] ?? ''));
}

/**
 * The server's name in hcc: the service's domain when it is a valid
 * hostname that carries hcc's name prefix, else `<prefix>svc<serviceid>`.
 * Null (see hcc_last_error) when hcc's prefix is needed and unknown.
 */
function hcc_server_name($params): ?string
{
    $domain = strtolower(trim((string) ($params['domain'] ?? '')));
    $prefix = hcc_prefix($params);
    if ($prefix === null) {
        return null;
    }
    if (hcc_valid_hostname($domain) && ($prefix === '' || str_starts_with($domain, $prefix))) {
        return $domain;
    }
    return $prefix . 'svc' . (int) ($params['serviceid'] ?? 0);
}

/** hcc's name prefix, from its catalog (asked once per PHP request). */
function hcc_prefix($params): ?string
{
    static $known = [];
    $base = hcc_base($params);
    if (array_key_exists($base, $known)) {
        return $known[$base];
    }
    $answer = hcc_api($params, 'GET', '/catalog');
    if (!$answer['ok']) {
        $GLOBALS['hcc_last_error'] = $answer['error'];
        return null;
    }
    return $known[$base] = (string) ($answer['data']['prefix'] ?? '');
}

function hcc_valid_hostname(string $name): bool
{
    if ($name === '' || strlen($name) > 253) {
        return false;
    }
    foreach (explode('.', $name) as $label) {
        if (!preg_match('/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/', $label)) {
            return false;
        }
    }
    return true;
}

function hcc_last_error(): string
{
    return (string) ($GLOBALS['hcc_last_error'] ?? hcc_t('unknown_error'));
}

// --- WHMCS's helpers, where they exist ------------------------------------

/** Runs `$work`, turning anything thrown into one line. */
function hcc_guard($params, string $action, callable $work): string
{
    try {
        hcc_begin($params, $action);
        $outcome = $work();
        return is_string($outcome) && $outcome !== '' ? $outcome : hcc_t('unknown_error');
    } catch (\Throwable $e) {
        return hcc_failure($e);
    }
}

function hcc_begin($params, string $action): void
{
    $GLOBALS['hcc_action'] = $action;
    unset($GLOBALS['hcc_last_error']);
}

function hcc_failure(\Throwable $e): string
{
    return 'hcc module: ' . $e->getMessage();
}

/** logModuleCall with the key, passwords and console links masked. */
function hcc_log($params, string $request, string $sent, string $received, array $data): void
{
    if (!function_exists('logModuleCall')) {
        return;
    }
    $secrets = array_values(array_filter([hcc_key($params)], fn ($s) => $s !== ''));
    $walk = function ($value) use (&$walk, &$secrets) {
        if (is_array($value)) {
            foreach ($value as $k => $v) {
                if (in_array($k, ['root_password', 'password', 'url', 'wss_url'], true) && is_string($v) && $v !== '') {
                    $secrets[] = $v;
                } else {
                    $walk($v);
                }
            }
        }
    };
    $walk($data);
    $mask = fn (string $text) => str_replace($secrets, '********', $text);
    try {
        logModuleCall(
            HCC_MODULE,
            (string) ($GLOBALS['hcc_action'] ?? 'call') . ' ' . $request,
            $mask($sent),
            $mask($received),
            $mask($received),
            $secrets
        );
    } catch (\Throwable $e) {
        // The log is WHMCS's; a failure there is not the customer's.
    }
}

function hcc_local_api(string $command, array $values): void
{
    if (!function_exists('localAPI')) {
        return;
    }
    try {
        localAPI($command, $values);
    } catch (\Throwable $e) {
        // Best effort: the server exists whatever WHMCS stores.
    }
}

/** A new root password for the next page of this service, once. */
function hcc_show_once(int $serviceid, string $password, string $verb): void
{
    if (session_status() !== PHP_SESSION_ACTIVE) {
        return;
    }
    $_SESSION[HCC_SHOWN_ONCE][$serviceid] = ['password' => $password, 'verb' => $verb];
}

function hcc_take_shown_password(int $serviceid): array|string
{
    if (session_status() !== PHP_SESSION_ACTIVE || !isset($_SESSION[HCC_SHOWN_ONCE][$serviceid])) {
        return '';
    }
    $shown = $_SESSION[HCC_SHOWN_ONCE][$serviceid];
    unset($_SESSION[HCC_SHOWN_ONCE][$serviceid]);
    return $shown;
}

// --- Small things --------------------------------------------------------

/** The language strings (lang/LANGUAGE.php, english where missing). */
function hcc_lang($params = []): array
{
    static $cache = [];
    $language = strtolower((string) ($params['clientsdetails']['language'] ?? 'english'));
    $language = preg_match('/^[a-z_-]+$/', $language) ? $language : 'english';
    if (!isset($cache[$language])) {
        $strings = [];
        foreach (array_unique(['english', $language]) as $file) {
            $path = __DIR__ . '/lang/' . $file . '.php';
            if (is_file($path)) {
                $_LANG = [];
                include $path;
                $strings = array_merge($strings, $_LANG);
            }
        }
        $cache[$language] = $strings;
    }
    return $cache[$language];
}

function hcc_t(string $key): string
{
    return (string) (hcc_lang()[$key] ?? $key);
}

function hcc_h(string $text): string
{
    return htmlspecialchars($text, ENT_QUOTES, 'UTF-8');
}

function hcc_bytes(float $bytes): string
{
    $units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
    $i = 0;
    while ($bytes >= 1024 && $i < count($units) - 1) {
        $bytes /= 1024;
        $i++;
    }
    return ($i === 0 ? (string) (int) $bytes : number_format($bytes, 1)) . ' ' . $units[$i];
}

/** An SVG polyline's points for `[[time, "value"], ...]` in a w x h box. */
function hcc_polyline(array $values, int $w, int $h): string
{
    $n = count($values);
    if ($n < 2) {
        return '';
    }
    $numbers = array_map(fn ($v) => (float) ($v[1] ?? 0), $values);
    $max = max(max($numbers), 1e-9);
    $points = [];
    foreach ($numbers as $i => $v) {
        $points[] = round($i * $w / ($n - 1), 1) . ',' . round($h - $v / $max * ($h - 2) - 1, 1);
    }
    return implode(' ', $points);
}
