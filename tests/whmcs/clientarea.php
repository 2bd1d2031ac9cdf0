<?php
// A stand-in for WHMCS's client area, for the tests (php -S ADDR
// tests/whmcs/clientarea.php): the service page
// `clientarea.php?action=productdetails&id=ID` renders the module's
// hcc_ClientArea with its template through Smarty (Debian's smarty4), as
// WHMCS does; a form's POST to `...&modop=custom&a=FUNCTION` calls
// hcc_FUNCTION($params) when hcc_ClientAreaCustomButtonArray lists it
// (with WHMCS's CSRF token) and shows its outcome on the next page;
// `...&dosinglesignon=1` redirects to hcc_ServiceSingleSignOn's
// redirectTo. The service's $params come from the JSON file named by
// HCC_WHMCS_PARAMS. Nothing hcc-related is stubbed.

define('WHMCS', true);
require '/usr/share/php/smarty4/Smarty.class.php';

$module = dirname(__DIR__, 2) . '/examples/whmcs/modules/servers/hcc';
require $module . '/hcc.php';

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path !== '/clientarea.php' || ($_GET['action'] ?? '') !== 'productdetails') {
    http_response_code(404);
    echo "not found\n";
    return true;
}
session_start();
if (!isset($_SESSION['token'])) {
    $_SESSION['token'] = bin2hex(random_bytes(16));
}
$params = json_decode(file_get_contents(getenv('HCC_WHMCS_PARAMS')), true);
$id = (int) $params['serviceid'];
$here = 'clientarea.php?action=productdetails&id=' . $id;

if (isset($_GET['dosinglesignon'])) {
    $sso = hcc_ServiceSingleSignOn($params);
    if (!empty($sso['success'])) {
        header('Location: ' . $sso['redirectTo'], true, 302);
        return true;
    }
    $_SESSION['flash'] = ['error', $sso['errorMsg'] ?? 'single sign-on failed'];
    header('Location: /' . $here, true, 303);
    return true;
}

if (($_GET['modop'] ?? '') === 'custom') {
    $function = (string) ($_GET['a'] ?? '');
    $allowed = array_values(hcc_ClientAreaCustomButtonArray($params));
    if ($_SERVER['REQUEST_METHOD'] !== 'POST' || !hash_equals($_SESSION['token'], (string) ($_POST['token'] ?? ''))) {
        $_SESSION['flash'] = ['error', 'Invalid token'];
    } elseif (!in_array($function, $allowed, true)) {
        $_SESSION['flash'] = ['error', 'Invalid action'];
    } else {
        $outcome = ('hcc_' . $function)($params);
        $_SESSION['flash'] = $outcome === 'success'
            ? ['success', 'Action Completed Successfully']
            : ['error', (string) $outcome];
    }
    header('Location: /' . $here, true, 303);
    return true;
}

$area = hcc_ClientArea($params);
$smarty = new Smarty();
$compile = sys_get_temp_dir() . '/hcc-whmcs-smarty-' . getmypid();
@mkdir($compile, 0700, true);
$smarty->setCompileDir($compile);
$smarty->setTemplateDir($module);
$smarty->assign($area['templateVariables']);
$smarty->assign('token', $_SESSION['token']);
$body = $smarty->fetch($module . '/' . $area['tabOverviewReplacementTemplate'] . '.tpl');
$flash = $_SESSION['flash'] ?? null;
unset($_SESSION['flash']);
header('Content-Type: text/html; charset=utf-8');
header('Cache-Control: no-store');
?><!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Product details - WHMCS stand-in</title></head>
<body>
<?php if ($flash): ?>
<div id="flash" class="alert alert-<?= htmlspecialchars($flash[0]) ?>"><?= htmlspecialchars($flash[1]) ?></div>
<?php endif; ?>
<?= $body ?>
</body></html>
