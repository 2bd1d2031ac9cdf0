{* hcc: a service's overview in WHMCS's client area (tabOverviewReplacementTemplate).
   Each button posts to WHMCS's custom-function URL (modop=custom&a=FUNCTION);
   the console is WHMCS's single sign-on (dosinglesignon=1). *}
{assign var=hccurl value="clientarea.php?action=productdetails&id=`$serviceid`"}
<div class="hcc" id="hcc-overview">
<style>
 .hcc table { border-collapse: collapse; margin-bottom: 1em; }
 .hcc th { text-align: left; padding-right: 1em; font-weight: 600; vertical-align: top; }
 .hcc form { display: inline-block; margin: 0 .3em .3em 0; }
 .hcc fieldset { border: 1px solid #ccc; padding: .5em; margin: 0 0 1em 0; }
 .hcc .hcc-status-running { color: #1a7f37; } .hcc .hcc-status-off { color: #b42318; }
 .hcc .hcc-password { font-family: monospace; font-size: 1.2em; background: #fff8c5; padding: .2em .5em; }
 .hcc svg { background: #f6f8fa; border: 1px solid #ddd; }
 .hcc .hcc-error { color: #b42318; font-weight: 600; }
</style>
{if $error}
  <p class="hcc-error" id="hcc-error">{$error|escape}</p>
{/if}
{if $shown_password}
  <p id="hcc-new-password">{$lang.new_password|escape}:
    <code class="hcc-password" id="hcc-password">{$shown_password.password|escape}</code>
    <button type="button" onclick="navigator.clipboard &amp;&amp; navigator.clipboard.writeText(document.getElementById('hcc-password').textContent)">{$lang.copy|escape}</button>
  </p>
{/if}
{if $server}
<h3>{$lang.title|escape}: <span id="hcc-name">{$server.name|escape}</span></h3>
<table>
  <tr><th>{$lang.status|escape}</th><td><span id="hcc-status" class="hcc-status-{$server.status|escape}">{$server.status|escape}</span></td></tr>
  <tr><th>{$lang.type|escape}</th><td id="hcc-type">{$server.server_type|escape}</td></tr>
  <tr><th>{$lang.image|escape}</th><td id="hcc-image">{$server.image|escape}</td></tr>
  <tr><th>{$lang.location|escape}</th><td>{$server.location|escape}</td></tr>
  <tr><th>{$lang.addresses|escape}</th><td id="hcc-addresses">
    {foreach $server.addresses as $address}<div><code>{$address.ip|escape}</code>{if $address.dns_ptr} &rarr; {$address.dns_ptr|escape}{/if}</div>{/foreach}
  </td></tr>
  <tr><th>{$lang.traffic|escape}</th><td><span id="hcc-traffic">{$server.traffic|escape}</span></td></tr>
  {if $server.rescue}<tr><th>{$lang.rescue|escape}</th><td>{$lang.rescue_active|escape}</td></tr>{/if}
</table>

{foreach $graphs as $graph}
  <figure id="hcc-graph-{$graph.id|escape}"><figcaption>{$graph.title|escape}</figcaption>
    <svg width="300" height="60" viewBox="0 0 300 60" role="img" aria-label="{$graph.title|escape}">
      {foreach $graph.lines as $line}<polyline fill="none" stroke="{if $line@index}#b42318{else}#0969da{/if}" stroke-width="1" points="{$line.points|escape}"/>{/foreach}
    </svg>
  </figure>
{/foreach}

<fieldset><legend>{$lang.power|escape}</legend>
  {if $server.off}
    <form method="post" action="{$hccurl}&amp;modop=custom&amp;a=start">{if isset($token)}<input type="hidden" name="token" value="{$token}">{/if}<button type="submit" data-hcc="start">{$lang.start|escape}</button></form>
  {/if}
  {if $server.running}
    <form method="post" action="{$hccurl}&amp;modop=custom&amp;a=reboot" onsubmit="return confirm('{$lang.confirm|escape:'javascript'|escape}')">{if isset($token)}<input type="hidden" name="token" value="{$token}">{/if}<button type="submit" data-hcc="reboot">{$lang.reboot|escape}</button></form>
    <form method="post" action="{$hccurl}&amp;modop=custom&amp;a=reset" onsubmit="return confirm('{$lang.confirm|escape:'javascript'|escape}')">{if isset($token)}<input type="hidden" name="token" value="{$token}">{/if}<button type="submit" data-hcc="reset">{$lang.reset|escape}</button></form>
    <form method="post" action="{$hccurl}&amp;modop=custom&amp;a=stop" onsubmit="return confirm('{$lang.confirm|escape:'javascript'|escape}')">{if isset($token)}<input type="hidden" name="token" value="{$token}">{/if}<button type="submit" data-hcc="stop">{$lang.stop|escape}</button></form>
    <form method="post" action="{$hccurl}&amp;modop=custom&amp;a=poweroff" onsubmit="return confirm('{$lang.confirm|escape:'javascript'|escape}')">{if isset($token)}<input type="hidden" name="token" value="{$token}">{/if}<button type="submit" data-hcc="poweroff">{$lang.poweroff|escape}</button></form>
  {/if}
  <a href="{$hccurl}&amp;dosinglesignon=1" target="_blank" rel="noopener" data-hcc="console">{$lang.console|escape}</a>
</fieldset>

<fieldset><legend>{$lang.reset_password|escape}</legend>
  <form method="post" action="{$hccurl}&amp;modop=custom&amp;a=resetpassword" onsubmit="return confirm('{$lang.confirm|escape:'javascript'|escape}')">{if isset($token)}<input type="hidden" name="token" value="{$token}">{/if}<button type="submit" data-hcc="resetpassword">{$lang.reset_password|escape}</button></form>
</fieldset>

<fieldset><legend>{$lang.rebuild|escape}</legend>
  <form method="post" action="{$hccurl}&amp;modop=custom&amp;a=rebuild" onsubmit="return confirm('{$lang.rebuild_confirm|escape:'javascript'|escape}')">{if isset($token)}<input type="hidden" name="token" value="{$token}">{/if}
    <select name="hcc_image" id="hcc-rebuild-image">{foreach $images as $image}<option value="{$image.name|escape}">{$image.description|escape}</option>{/foreach}</select>
    <button type="submit" data-hcc="rebuild">{$lang.rebuild|escape}</button> <small>{$lang.rebuild_warning|escape}</small>
  </form>
</fieldset>

<fieldset><legend>{$lang.rescue|escape}</legend>
  {if $server.rescue}
    <form method="post" action="{$hccurl}&amp;modop=custom&amp;a=rescueoff">{if isset($token)}<input type="hidden" name="token" value="{$token}">{/if}<button type="submit" data-hcc="rescueoff">{$lang.rescue_off|escape}</button></form>
  {else}
    <form method="post" action="{$hccurl}&amp;modop=custom&amp;a=rescueon">{if isset($token)}<input type="hidden" name="token" value="{$token}">{/if}<button type="submit" data-hcc="rescueon">{$lang.rescue_on|escape}</button></form>
  {/if}
</fieldset>

<fieldset><legend>{$lang.reverse_dns|escape}</legend>
  <form method="post" action="{$hccurl}&amp;modop=custom&amp;a=rdns">{if isset($token)}<input type="hidden" name="token" value="{$token}">{/if}
    <select name="hcc_ip" id="hcc-rdns-ip">{foreach $server.addresses as $address}<option value="{$address.ip|escape}">{$address.ip|escape}</option>{/foreach}</select>
    <input type="text" name="hcc_hostname" id="hcc-rdns-hostname" placeholder="{$lang.hostname|escape}" size="30">
    <button type="submit" data-hcc="rdns">{$lang.rdns|escape}</button>
  </form>
</fieldset>
{/if}
</div>
