<?php
/** The hcc module's words (english); another lang/LANGUAGE.php overrides any of them. */
if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

$_LANG['sso_client'] = 'Open the console';
$_LANG['sso_admin'] = 'Open the console';
$_LANG['no_key'] = 'No hcc API key: put it in the server\'s Access Hash (or Password).';
$_LANG['no_host'] = 'No hcc address: put hcc serve\'s hostname in the server\'s Hostname.';
$_LANG['no_curl'] = 'PHP\'s curl extension is missing.';
$_LANG['scope_too_small'] = 'The key `%s` works but has scope `%s`; this module needs an `admin` key (hcc apikey add whmcs --scope admin) to create and delete servers.';
$_LANG['no_worker'] = 'The key `%s` works, but no hcc worker is running: commands would wait in hcc\'s queue (start `hcc worker`).';
$_LANG['unreachable'] = 'hcc at %s cannot be reached: %s';
$_LANG['bad_answer'] = 'hcc answered HTTP %d without an explanation.';
$_LANG['command_failed'] = 'hcc could not %s: %s';
$_LANG['not_taken'] = 'hcc queued it (command %d) but its worker has not taken it within %d s; it runs when `hcc worker` does.';
$_LANG['no_type'] = 'The product has no server type (module setting 1).';
$_LANG['no_chosen_password'] = 'Hetzner cannot set a chosen root password. Use "Reset root password": Hetzner makes a new one, which is stored as the service\'s password and shown once.';
$_LANG['no_link'] = 'hcc gave no console link.';
$_LANG['pick_image'] = 'Pick the image to reinstall with.';
$_LANG['rdns_fields'] = 'Give an address of the server and the hostname for it.';
$_LANG['unknown_error'] = 'hcc module: something went wrong.';

$_LANG['start'] = 'Power on';
$_LANG['stop'] = 'Shut down';
$_LANG['poweroff'] = 'Power off';
$_LANG['reboot'] = 'Reboot';
$_LANG['reset'] = 'Reset';
$_LANG['rebuild'] = 'Reinstall';
$_LANG['reset_password'] = 'Reset root password';
$_LANG['rescue_on'] = 'Enable rescue';
$_LANG['rescue_off'] = 'Disable rescue';
$_LANG['rdns'] = 'Set reverse DNS';
$_LANG['revoke'] = 'End console sessions';
$_LANG['console'] = 'Console';

$_LANG['admin_server'] = 'hcc server';
$_LANG['admin_status'] = 'Status';
$_LANG['admin_consoles'] = 'Live console sessions';
$_LANG['admin_no_consoles'] = 'none';
$_LANG['admin_suspended'] = 'Consoles suspended';

$_LANG['title'] = 'Your server';
$_LANG['status'] = 'Status';
$_LANG['type'] = 'Type';
$_LANG['image'] = 'System';
$_LANG['location'] = 'Location';
$_LANG['addresses'] = 'Addresses';
$_LANG['reverse_dns'] = 'Reverse DNS';
$_LANG['traffic'] = 'Traffic this month';
$_LANG['traffic_words'] = 'out %s, in %s, included %s';
$_LANG['rescue'] = 'Rescue system';
$_LANG['rescue_active'] = 'active: the server boots the rescue system';
$_LANG['power'] = 'Power';
$_LANG['graph_cpu'] = 'CPU, last 24 hours';
$_LANG['graph_network'] = 'Network, last 24 hours';
$_LANG['new_password'] = 'The new root password, shown only now';
$_LANG['copy'] = 'Copy';
$_LANG['rebuild_warning'] = 'Reinstalling erases the whole disk.';
$_LANG['rebuild_confirm'] = 'Reinstall and erase everything on this server?';
$_LANG['confirm'] = 'Are you sure?';
$_LANG['hostname'] = 'Hostname';
