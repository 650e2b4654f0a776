# Manual check of `tandem mount` through WinFsp on Windows (issue 16), for a user of that
# platform to run and report back from: CI cannot run WinFsp (Linux, Wine).
# Needs WinFsp installed and tandem.exe on PATH (or -Tandem). Uses a free drive letter
# (-Drive, default T:) and a fresh folder under %TEMP%; prints "ok - ..." per check and
# stops at the first failure. Run: powershell -ExecutionPolicy Bypass -File windows-mount.ps1
param([string]$Tandem = "tandem.exe", [string]$Drive = "T:")
$ErrorActionPreference = "Stop"
$work = Join-Path $env:TEMP ("tandem-mount-check-" + [guid]::NewGuid().ToString("N").Substring(0, 8))
$src = Join-Path $work "src"; $tgt = Join-Path $work "tgt"
New-Item -ItemType Directory -Force $src, $tgt | Out-Null
Set-Content (Join-Path $src "before.txt") "made before the mount"
function Ok($what) { Write-Host "ok - $what" }
function Fail($what) { Write-Host "FAILED: $what"; Get-Content (Join-Path $work "mount.out") -ErrorAction SilentlyContinue; exit 1 }
function WaitFor($what, [scriptblock]$cond) {
  for ($i = 0; $i -lt 100; $i++) { if (& $cond) { return } ; Start-Sleep -Milliseconds 200 }
  Fail $what
}

$mount = Start-Process -FilePath $Tandem -PassThru -NoNewWindow `
  -ArgumentList @("mount", $src, $tgt, "--at", $Drive, "--foreground", "--state-dir", (Join-Path $work "state")) `
  -RedirectStandardError (Join-Path $work "mount.out")
WaitFor "the mount at $Drive" { Test-Path "$Drive\before.txt" }
Ok "mounted at $Drive; the startup sync copied before.txt: $(Test-Path "$tgt\before.txt")"

Set-Content "$Drive\new.txt" "written through the mount"
WaitFor "new.txt replicated" { (Test-Path "$tgt\new.txt") -and ((Get-Content "$tgt\new.txt") -eq "written through the mount") }
Ok "a file written through the mount was replicated"

New-Item -ItemType Directory "$Drive\dir" | Out-Null
Move-Item "$Drive\new.txt" "$Drive\dir\moved.txt"
WaitFor "the rename replicated" { (Test-Path "$tgt\dir\moved.txt") -and -not (Test-Path "$tgt\new.txt") }
Ok "mkdir and rename through the mount were replicated"

Set-ItemProperty "$Drive\dir\moved.txt" -Name IsReadOnly -Value $true
WaitFor "read-only replicated" { (Get-Item "$tgt\dir\moved.txt").IsReadOnly }
Set-ItemProperty "$Drive\dir\moved.txt" -Name IsReadOnly -Value $false
Ok "the read-only attribute set through the mount was replicated"

Remove-Item "$Drive\dir" -Recurse
WaitFor "the delete replicated" { -not (Test-Path "$tgt\dir") }
Ok "a folder deleted through the mount was deleted in the target (see its trash)"

& $Tandem changes $src --limit 20
& $Tandem unmount $Drive
WaitFor "the unmount" { $mount.HasExited -and -not (Test-Path "$Drive\") }
Ok "unmounted; the source folder holds what went through the mount: $((Get-ChildItem $src -Name) -join ', ')"
Remove-Item $work -Recurse -Force
