#Requires -Version 7
<#
.SYNOPSIS
    Deploys the build. Note: this prose has a colon and is not metadata.
.NOTES
    Stage: Release
    Order: 5
    Dependencies: 0100
    Tags: release, prod
    AllowParallel: false
    Timeout: 15m
#>
param([string]$Environment, [switch]$Force)
Write-Host "deploy $Environment"
