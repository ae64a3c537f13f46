#Requires -Version 7
<#
.SYNOPSIS
    Deploys the build. Note: this line has a colon and is not metadata.
.NOTES
    Stage: Release
    Dependencies: 0407
    Tags: release, prod
    Timeout: 1h
#>
param([string]$Environment, [switch]$Force)
Write-Host "deploy $Environment"
